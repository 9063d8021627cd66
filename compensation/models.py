"""Compensation for viewers who sat through an outage: coupons, red packets, lotteries, lucky bags.

Money is integer fen everywhere. Correctness lives in the database, not the broker:
- a Budget row is locked (SELECT ... FOR UPDATE) to reserve a campaign's cost, and a CHECK
  constraint keeps reserved <= total, so concurrent campaigns can never overspend;
- the audience is frozen into Recipient rows when issuing starts; IssuanceBatch rows cover
  position ranges of it; a batch inserts its grants and marks itself done in ONE transaction;
- UNIQUE(campaign, viewer) and the unique coupon code (the grant's primary key) make any replay
  of a batch insert nothing.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from incidents.models import Incident
from streams.models import LiveRoom, Viewer

# Links viewers open: web pages only (no javascript:, no app schemes).
SHOP_URL_VALIDATOR = URLValidator(schemes=["http", "https"], message=_("请填写以 http:// 或 https:// 开头的网址"))

class Budget(models.Model):
    """Money set aside for compensation; campaigns reserve from it up front."""

    name = models.CharField(_("预算名称"), max_length=100)
    room = models.ForeignKey(LiveRoom, verbose_name=_("直播间"), null=True, blank=True, on_delete=models.PROTECT,
                             help_text=_("留空表示所有直播间可用"))
    total_fen = models.BigIntegerField(_("总额(分)"))
    reserved_fen = models.BigIntegerField(_("已占用(分)"), default=0)
    per_viewer_cap_fen = models.BigIntegerField(_("每位观众上限(分)"))
    # Campaigns costing more than this need a manager's approval by a second person.
    approval_threshold_fen = models.BigIntegerField(_("需审批金额(分)"), null=True, blank=True,
                                                    help_text=_("留空则使用系统默认值"))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name = _("补偿预算")
        verbose_name_plural = _("补偿预算")
        constraints = [
            models.CheckConstraint(condition=Q(total_fen__gte=0), name="budget_total_not_negative"),
            models.CheckConstraint(condition=Q(per_viewer_cap_fen__gt=0), name="budget_cap_positive"),
            # The last line of defence against overspending, whatever the code does.
            models.CheckConstraint(condition=Q(reserved_fen__gte=0) & Q(reserved_fen__lte=models.F("total_fen")),
                                   name="budget_reserved_within_total"),
        ]

    def __str__(self):
        return self.name

    @property
    def available_fen(self):
        return self.total_fen - self.reserved_fen

    @property
    def threshold_fen(self):
        if self.approval_threshold_fen is not None:
            return self.approval_threshold_fen
        return settings.COMPENSATION_APPROVAL_THRESHOLD_FEN


class Campaign(models.Model):
    class Kind(models.TextChoices):
        COUPON = "coupon", _("无门槛优惠券")
        RED_PACKET = "red_packet", _("红包")
        LOTTERY = "lottery", _("抽奖")
        LUCKY_BAG = "lucky_bag", _("专属福袋")

    class Status(models.TextChoices):
        DRAFT = "draft", _("草稿")
        APPROVED = "approved", _("已审批")
        ISSUING = "issuing", _("发放中")
        COMPLETED = "completed", _("已完成")
        FAILED = "failed", _("失败")
        CANCELLED = "cancelled", _("已取消")

    # The only legal state changes; everything else is refused (see transition_to).
    TRANSITIONS = {
        Status.DRAFT: {Status.APPROVED, Status.CANCELLED},
        Status.APPROVED: {Status.ISSUING, Status.CANCELLED},
        Status.ISSUING: {Status.COMPLETED, Status.FAILED, Status.CANCELLED},
        Status.COMPLETED: set(),
        Status.FAILED: set(),
        Status.CANCELLED: set(),
    }
    DRAW_KINDS = (Kind.LOTTERY, Kind.LUCKY_BAG)

    room = models.ForeignKey(LiveRoom, verbose_name=_("直播间"), related_name="campaigns", on_delete=models.PROTECT)
    incident = models.ForeignKey(Incident, verbose_name=_("事故"), related_name="campaigns", null=True, blank=True,
                                 on_delete=models.PROTECT)
    budget = models.ForeignKey(Budget, verbose_name=_("预算"), related_name="campaigns", on_delete=models.PROTECT)
    kind = models.CharField(_("类型"), max_length=12, choices=Kind.choices)
    status = models.CharField(_("状态"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    title = models.CharField(_("标题"), max_length=120)

    # Coupon: face value per viewer. Red packet: the total split among shares.
    # Lottery / lucky bag: the prize per winner.
    amount_fen = models.BigIntegerField(_("金额(分)"))
    share_count = models.PositiveIntegerField(_("红包份数"), null=True, blank=True)
    share_cap_fen = models.BigIntegerField(_("单份上限(分)"), null=True, blank=True)
    winner_count = models.PositiveIntegerField(_("中奖人数"), null=True, blank=True)
    keyword = models.CharField(_("参与口令"), max_length=40, blank=True)
    countdown_s = models.PositiveIntegerField(_("倒计时(秒)"), default=0)
    # Where a viewer spends a coupon ("去使用"); empty: the merchant's shop (ShopClient.shop_url).
    shop_url = models.URLField(_("使用链接"), max_length=500, blank=True, validators=[SHOP_URL_VALIDATOR],
                               help_text=_("观众点「去使用」打开的商城页面(http/https);留空则用商家的商城地址"))

    # Audience: present in the room during the window for at least min_overlap_s seconds.
    window_start = models.DateTimeField(_("窗口开始"))
    window_end = models.DateTimeField(_("窗口结束"))
    min_overlap_s = models.PositiveIntegerField(_("最短在场(秒)"), default=60)
    # Anonymous cookie viewers cost nothing to fake: they count only when the operator says so.
    include_anonymous = models.BooleanField(_("包含匿名观众"), default=False,
                                            help_text=_("默认只有平台认证的观众可获得补偿"))

    valid_from = models.DateTimeField(_("生效时间"), null=True, blank=True)
    valid_until = models.DateTimeField(_("失效时间"), null=True, blank=True)

    eligible_count = models.PositiveIntegerField(_("符合条件人数"), default=0)
    cost_fen = models.BigIntegerField(_("预计成本(分)"), default=0)
    reserved_fen = models.BigIntegerField(_("已占用预算(分)"), default=0)
    issued_count = models.PositiveIntegerField(_("已发放数"), default=0)
    issued_fen = models.BigIntegerField(_("已发放金额(分)"), default=0)
    batch_size = models.PositiveIntegerField(default=0)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("创建人"), related_name="+",
                                   on_delete=models.PROTECT)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("审批人"), related_name="+",
                                    null=True, blank=True, on_delete=models.PROTECT)
    approved_at = models.DateTimeField(_("审批时间"), null=True, blank=True)
    started_at = models.DateTimeField(_("开始发放"), null=True, blank=True)
    closes_at = models.DateTimeField(_("截止时间"), null=True, blank=True)
    finished_at = models.DateTimeField(_("结束时间"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("撤销时间"), null=True, blank=True)
    failure_reason = models.CharField(max_length=300, blank=True)

    # Verifiable draw (lottery, lucky bag): commit to the seed at open, reveal after the draw.
    seed = models.CharField(max_length=64, blank=True, editable=False)
    seed_hash = models.CharField(_("种子哈希"), max_length=64, blank=True)
    entrants_hash = models.CharField(_("参与名单哈希"), max_length=64, blank=True)
    entrants_count = models.PositiveIntegerField(default=0)
    draw_closed_at = models.DateTimeField(null=True, blank=True)
    seed_revealed_at = models.DateTimeField(null=True, blank=True)
    winners = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("补偿活动")
        verbose_name_plural = _("补偿活动")
        indexes = [models.Index(fields=["status"]), models.Index(fields=["room", "-created_at"])]
        constraints = [
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="campaign_amount_positive"),
            models.CheckConstraint(condition=Q(reserved_fen__gte=0), name="campaign_reserved_not_negative"),
            models.CheckConstraint(condition=Q(window_end__gte=models.F("window_start")), name="campaign_window_ordered"),
        ]

    def __str__(self):
        return f"#{self.pk} {self.title}"

    @property
    def is_draw(self):
        return self.kind in self.DRAW_KINDS

    @property
    def is_open(self):
        return self.status == self.Status.ISSUING

    @property
    def per_viewer_fen(self):
        """What one viewer can receive at most (checked against the budget's per-viewer cap)."""
        if self.kind == self.Kind.RED_PACKET:
            return self.share_cap_fen or self.amount_fen
        return self.amount_fen

    def use_url(self):
        """Where a viewer spends this campaign's coupon ("去使用"): its own link, else its merchant's shop."""
        if self.shop_url:
            return self.shop_url
        return (ShopClient.objects.filter(merchant=self.room.merchant, is_active=True).exclude(shop_url="")
                .order_by("pk").values_list("shop_url", flat=True).first() or "")

    def transition_to(self, new_status):
        """Validate and apply a state change (caller holds the row lock and saves)."""
        if new_status not in self.TRANSITIONS[self.Status(self.status)]:
            raise ValidationError(
                _("活动状态不能从「%(old)s」变为「%(new)s」")
                % {"old": self.get_status_display(), "new": self.Status(new_status).label}
            )
        self.status = new_status


class Recipient(models.Model):
    """The audience frozen when issuing starts: position 1..N, one row per eligible viewer."""

    # No database FK constraints here: the rows are derived in SQL from ViewerSession (whose viewers
    # exist) and checking two deferred FK triggers per row at commit doubled the audience freeze time.
    # Grants, the rows that matter, keep their constraints.
    campaign = models.ForeignKey(Campaign, related_name="+", on_delete=models.CASCADE, db_index=False,
                                 db_constraint=False)
    position = models.PositiveIntegerField()
    viewer = models.ForeignKey(Viewer, related_name="+", on_delete=models.CASCADE, db_index=False,
                               db_constraint=False)
    overlap_s = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "position"], name="recipient_position_unique")]


class IssuanceBatch(models.Model):
    """A durable unit of issuing work: recipients first_position..last_position of a campaign.

    Grants and `status=done` are written in one transaction, so a batch is either fully done or
    not at all; a sweeper re-queues batches still pending after COMPENSATION_STUCK_AFTER_S.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("待处理")
        DONE = "done", _("已完成")

    campaign = models.ForeignKey(Campaign, related_name="batches", on_delete=models.CASCADE, db_index=False)
    number = models.PositiveIntegerField()
    first_position = models.PositiveIntegerField()
    last_position = models.PositiveIntegerField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Recipients of this batch holding a grant once it is done (sum over done batches = grants).
    granted_count = models.PositiveIntegerField(default=0)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["campaign_id", "number"]  # by id: ordering by "campaign" would join (and lock) campaigns
        constraints = [models.UniqueConstraint(fields=["campaign", "number"], name="batch_number_unique")]
        indexes = [models.Index(fields=["status", "enqueued_at"], name="batch_pending_idx",
                                condition=Q(status="pending"))]

    @property
    def size(self):
        return self.last_position - self.first_position + 1


class Grant(models.Model):
    """What one viewer received from one campaign. The code is the primary key (unique, unguessable)."""

    code = models.CharField(_("券码"), max_length=24, primary_key=True)
    # No database FK constraint to the campaign: every grant is inserted while its batch holds a shared
    # lock on the campaign row (it cannot vanish), campaigns are never deleted (PROTECT), and the
    # per-row deferred check plus its row lock on one hot campaign row cost about half of the insert
    # time (see docs/benchmarks/compensation.md). The viewer FK stays.
    campaign = models.ForeignKey(Campaign, related_name="grants", on_delete=models.PROTECT, db_index=False,
                                 db_constraint=False)
    viewer = models.ForeignKey(Viewer, related_name="compensation_grants", on_delete=models.PROTECT)
    amount_fen = models.BigIntegerField(_("金额(分)"))
    issued_at = models.DateTimeField(_("发放时间"), db_default=models.functions.Now())
    redeemed_at = models.DateTimeField(_("核销时间"), null=True, blank=True)
    redeemed_order = models.CharField(_("订单号"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("补偿发放")
        verbose_name_plural = _("补偿发放")
        constraints = [
            models.UniqueConstraint(fields=["campaign", "viewer"], name="one_grant_per_viewer"),
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="grant_amount_positive"),
        ]


class RedPacketShare(models.Model):
    """One pre-generated share of a red packet; claimed atomically by one viewer."""

    campaign = models.ForeignKey(Campaign, related_name="shares", on_delete=models.CASCADE, db_index=False)
    index = models.PositiveIntegerField()
    amount_fen = models.BigIntegerField()
    viewer = models.ForeignKey(Viewer, null=True, blank=True, related_name="+", on_delete=models.PROTECT)
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["campaign_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "index"], name="share_index_unique"),
            models.UniqueConstraint(fields=["campaign", "viewer"], name="one_share_per_viewer"),
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="share_amount_positive"),
        ]


class DrawEntrant(models.Model):
    """An entrant of a lottery / lucky bag draw (frozen when the draw closes)."""

    class Via(models.TextChoices):
        AUDIENCE = "audience", _("自动参与")
        COMMENT = "comment", _("评论口令")
        BUTTON = "button", _("点击参与")

    campaign = models.ForeignKey(Campaign, related_name="entrants", on_delete=models.CASCADE, db_index=False)
    viewer = models.ForeignKey(Viewer, related_name="+", on_delete=models.CASCADE)
    via = models.CharField(max_length=10, choices=Via.choices)
    entered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "viewer"], name="one_entry_per_viewer")]


class ShopClient(models.Model):
    """A merchant system allowed to call the shop API (bearer token, stored hashed).

    A token sees only its own merchant's rooms: their coupons, campaigns and audiences."""

    name = models.CharField(_("名称"), max_length=100, unique=True)
    # Matches LiveRoom.merchant; a client without a merchant (registered before) sees nothing.
    merchant = models.CharField(_("商家"), max_length=100, blank=True)
    # The merchant's shop, where its coupons are spent (the viewer page's "去使用" unless a campaign says otherwise).
    shop_url = models.URLField(_("商城地址"), max_length=500, blank=True, validators=[SHOP_URL_VALIDATOR])
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_hint = models.CharField(max_length=8, blank=True, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("商城接入方")
        verbose_name_plural = _("商城接入方")

    def __str__(self):
        return self.name


class Redemption(models.Model):
    """One redemption request from the shop; (client, request_id) makes retries idempotent."""

    client = models.ForeignKey(ShopClient, on_delete=models.PROTECT)
    request_id = models.CharField(max_length=64)
    grant = models.ForeignKey(Grant, null=True, on_delete=models.PROTECT, related_name="redemptions")
    order_ref = models.CharField(max_length=64, blank=True)
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client", "request_id"], name="redemption_request_unique")]
