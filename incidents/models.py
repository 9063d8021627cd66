"""Incident core. The incidents issue extends this (runbooks, timeline, reviews, analytics)."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from streams.models import LiveRoom

from .messages import actor_label, pick, render


class Severity(models.IntegerChoices):
    SEV1 = 1, "SEV1"
    SEV2 = 2, "SEV2"
    SEV3 = 3, "SEV3"
    SEV4 = 4, "SEV4"


class IncidentType(models.Model):
    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(_("名称"), max_length=60)
    default_severity = models.PositiveSmallIntegerField(_("默认级别"), choices=Severity.choices, default=Severity.SEV3)
    description = models.CharField(_("说明"), max_length=300, blank=True)
    # English texts (seeded types have them; managers may add or edit them); readers in English see these.
    name_en = models.CharField(_("英文名称"), max_length=60, blank=True)
    description_en = models.CharField(_("英文说明"), max_length=300, blank=True)

    def current_runbook(self):
        return self.runbooks.order_by("-version").first()

    @property
    def display_name(self):
        return pick(self.name, self.name_en)

    @property
    def display_description(self):
        return pick(self.description, self.description_en)

    class Meta:
        ordering = ["name"]
        verbose_name = _("事故类型")
        verbose_name_plural = _("事故类型")

    def __str__(self):
        return self.display_name


class Incident(models.Model):
    class Status(models.TextChoices):
        DETECTED = "detected", _("已发现")
        ACKNOWLEDGED = "acknowledged", _("已响应")
        MITIGATED = "mitigated", _("已缓解")
        RESOLVED = "resolved", _("已解决")
        REVIEWED = "reviewed", _("已复盘")
        CANCELLED = "cancelled", _("已取消")

    room = models.ForeignKey(LiveRoom, verbose_name=_("直播间"), related_name="incidents", on_delete=models.PROTECT)
    incident_type = models.ForeignKey(IncidentType, verbose_name=_("类型"), on_delete=models.PROTECT)
    severity = models.PositiveSmallIntegerField(_("级别"), choices=Severity.choices, default=Severity.SEV3)
    status = models.CharField(_("状态"), max_length=12, choices=Status.choices, default=Status.DETECTED)
    title = models.CharField(_("标题"), max_length=200)
    # A generated title as a message (incidents.messages), rendered in the reader's language; empty
    # for a title a person typed. `title` keeps the Chinese rendering for search.
    title_msg = models.JSONField(default=dict, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("负责人"), null=True, blank=True, on_delete=models.SET_NULL
    )
    is_drill = models.BooleanField(_("演练"), default=False)

    # Milestones; the outage window for compensation is detected_at .. resolved_at.
    detected_at = models.DateTimeField(_("发现时间"), default=timezone.now, db_index=True)
    acknowledged_at = models.DateTimeField(_("响应时间"), null=True, blank=True)
    mitigated_at = models.DateTimeField(_("缓解时间"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("解决时间"), null=True, blank=True)
    reviewed_at = models.DateTimeField(_("复盘时间"), null=True, blank=True)

    # The case record (原因、处理过程、结果), required to close.
    cause = models.TextField(_("原因"), blank=True)
    handling = models.TextField(_("处理过程"), blank=True)
    outcome = models.TextField(_("结果"), blank=True)

    # Live-session context captured at detection (viewers, source, line health ...).
    context = models.JSONField(default=dict, blank=True)

    source = models.CharField(_("来源"), max_length=16, default="manual")
    runbook = models.ForeignKey("Runbook", verbose_name=_("预案版本"), null=True, blank=True,
                                on_delete=models.PROTECT, related_name="incidents")
    # Denormalised from the timeline so analytics need no scan of it.
    first_announcement_at = models.DateTimeField(_("首次公告时间"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    # Who runs the response ("我来处理"); set from the page or a page's link, always on the timeline.
    commander = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("指挥"), null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="+")
    commander_since = models.DateTimeField(_("接手时间"), null=True, blank=True)
    # A duplicate is closed into another incident; it keeps its rows (PROTECT: the pair cannot be deleted).
    duplicate_of = models.ForeignKey("self", verbose_name=_("重复于"), null=True, blank=True,
                                     on_delete=models.PROTECT, related_name="duplicates")
    # Paging: how many rounds were sent and when the last one was (escalation reads these).
    page_round = models.PositiveSmallIntegerField(default=0)
    last_paged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-detected_at"]
        indexes = [
            models.Index(fields=["room", "status"]),
            models.Index(fields=["incident_type", "detected_at"]),
            models.Index(fields=["is_drill", "detected_at"], name="incident_drill_detected"),
        ]
        constraints = [
            # Dedupe: one open incident per room and type (drills counted apart).
            models.UniqueConstraint(
                fields=["room", "incident_type", "is_drill"],
                condition=models.Q(status__in=["detected", "acknowledged", "mitigated"]),
                name="one_open_incident_per_room_type",
            )
        ]
        verbose_name = _("事故")
        verbose_name_plural = _("事故")

    def __str__(self):
        return f"#{self.pk} {self.display_title}"

    @property
    def display_title(self):
        return render(self.title_msg, fallback=self.title) if self.title_msg else self.title

    def get_absolute_url(self):
        from django.urls import reverse

        return reverse("incidents:detail", args=[self.pk])

    @property
    def is_open(self):
        return self.status in ("detected", "acknowledged", "mitigated")

    @property
    def pages_people(self):
        """SEV1 and SEV2 page the on-duty roles; drills never do."""
        return self.severity <= Severity.SEV2 and not self.is_drill

    @property
    def is_taken(self):
        """Someone has answered: a commander, or the incident moved past detected."""
        return self.commander_id is not None or self.status != Incident.Status.DETECTED

    def allowed_transitions(self):
        return TRANSITIONS[self.status]

    @property
    def source_label(self):
        return dict(Source.choices).get(self.source, self.source)

    @property
    def program_source_label(self):
        value = (self.context or {}).get("program_source")
        return dict(LiveRoom.Source.choices).get(value, value or "—")

    def outage_end(self):
        return self.resolved_at or timezone.now()

    @property
    def live_session_started_at(self):
        """When the show went on air (from the context captured at detection), as a datetime."""
        from django.utils.dateparse import parse_datetime

        value = (self.context or {}).get("live_session_started_at")
        return parse_datetime(value) if isinstance(value, str) else None

    @property
    def context_lines(self):
        """Line health at detection, as people read it: labels, rounded figures."""
        from streams.models import IngestLine

        roles = dict(LiveRoom.Source.choices) | {"program": _("节目输出")}
        states = dict(IngestLine.State.choices)
        rows = []
        for role, h in ((self.context or {}).get("lines") or {}).items():
            state = states.get(h.get("state")) or (_("已连接") if h.get("connected") else
                                                    _("未连接") if "connected" in h else "")
            flags = [str(label) for key, label in (("frozen", _("冻结")), ("black", _("黑屏")), ("silent", _("静音")))
                     if h.get(key)]
            rows.append({"label": roles.get(role, role), "state": " ".join([str(state)] + flags).strip(),
                         "bitrate_kbps": _rounded(h.get("bitrate_kbps"), 0), "fps": _rounded(h.get("fps"), 0),
                         "loss_pct": _rounded(h.get("loss_pct"), 1)})
        return rows


def _rounded(value, digits):
    if value is None:
        return None
    return round(value) if digits == 0 else round(value, digits)


# --- Issue 5: lifecycle, runbooks, timeline, reviews -------------------------------------------

from streams.models import AppendOnlyModel  # noqa: E402

OPEN_STATUSES = (Incident.Status.DETECTED, Incident.Status.ACKNOWLEDGED, Incident.Status.MITIGATED)

# Allowed lifecycle moves; anything else is refused with a message naming the next valid steps.
TRANSITIONS = {
    Incident.Status.DETECTED: (Incident.Status.ACKNOWLEDGED, Incident.Status.CANCELLED),
    Incident.Status.ACKNOWLEDGED: (Incident.Status.MITIGATED, Incident.Status.RESOLVED, Incident.Status.CANCELLED),
    Incident.Status.MITIGATED: (Incident.Status.RESOLVED, Incident.Status.CANCELLED),
    Incident.Status.RESOLVED: (Incident.Status.REVIEWED,),
    Incident.Status.REVIEWED: (),
    Incident.Status.CANCELLED: (),
}
# Milestone field set when entering a status.
MILESTONE_OF_STATUS = {
    Incident.Status.ACKNOWLEDGED: "acknowledged_at",
    Incident.Status.MITIGATED: "mitigated_at",
    Incident.Status.RESOLVED: "resolved_at",
    Incident.Status.REVIEWED: "reviewed_at",
}
MILESTONES = ("detected_at", "acknowledged_at", "mitigated_at", "resolved_at", "reviewed_at")


class Source(models.TextChoices):
    MANUAL = "manual", _("人工申报")
    AUTO_FAILOVER = "auto_failover", _("自动切换")
    LINE_DOWN = "line_down", _("线路中断超时")
    ALERT = "alert", _("告警转事故")
    DRILL = "drill", _("演练")


class StepRole(models.TextChoices):
    OPS = "ops", _("后台运营")
    FLOOR_CONTROL = "floor_control", _("场控/助理")
    TECH_SUPPORT = "tech_support", _("技术支持")


class StepAction(models.TextChoices):
    NONE = "", _("无(人工确认)")
    # The media operation is switch_source; the value carries its argument, the source.
    SWITCH_TO_BACKUP = "switch_source:backup", _("切到备用线路")
    SWITCH_TO_PRIMARY = "switch_source:primary", _("切回主线路")
    SWITCH_TO_SLATE = "switch_source:slate", _("播放垫片")
    END_SLATE = "end_slate", _("结束垫片")
    PIN_ANNOUNCEMENT = "pin_announcement", _("置顶公告")
    SEND_HOST_CUE = "send_host_cue", _("发送主播提示")
    REQUEST_KEYFRAME = "request_keyframe", _("请求关键帧")
    RESTART_LINE = "restart_line", _("重启推流线路")
    OPEN_COMPENSATION = "open_compensation", _("发起补偿")

    @property
    def capability(self):
        """The entry of controlroom.roles.CAPABILITIES that running this step's action needs."""
        return self.value.partition(":")[0] if self.value != "open_compensation" else None


class Runbook(models.Model):
    """One version of a type's SOP. Editing creates a new version; incidents keep theirs."""

    incident_type = models.ForeignKey(IncidentType, verbose_name=_("类型"), related_name="runbooks", on_delete=models.PROTECT)
    version = models.PositiveIntegerField(_("版本"))
    summary = models.CharField(_("说明"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["incident_type", "-version"]
        constraints = [models.UniqueConstraint(fields=["incident_type", "version"], name="one_runbook_version")]
        verbose_name = _("应急预案")
        verbose_name_plural = _("应急预案")

    def __str__(self):
        return f"{self.incident_type} v{self.version}"


class RunbookStep(models.Model):
    runbook = models.ForeignKey(Runbook, related_name="steps", on_delete=models.CASCADE)
    role = models.CharField(_("角色"), max_length=20, choices=StepRole.choices)
    position = models.PositiveSmallIntegerField(_("顺序"))
    title = models.CharField(_("步骤"), max_length=200)
    instructions = models.TextField(_("说明"), blank=True)
    title_en = models.CharField(_("英文步骤"), max_length=200, blank=True)
    instructions_en = models.TextField(_("英文说明"), blank=True)
    action = models.CharField(_("一键动作"), max_length=24, choices=StepAction.choices, blank=True)
    # Announcement/cue text ("template:<name>" for a wall announcement template), or the line role
    # for keyframe/restart.
    action_param = models.CharField(_("动作参数"), max_length=300, blank=True)

    class Meta:
        ordering = ["runbook", "role", "position"]
        verbose_name = _("预案步骤")
        verbose_name_plural = _("预案步骤")

    def __str__(self):
        return f"{self.get_role_display()} {self.position}. {self.display_title}"

    @property
    def display_title(self):
        return pick(self.title, self.title_en)

    @property
    def display_instructions(self):
        return pick(self.instructions, self.instructions_en)


class IncidentStep(models.Model):
    """An incident's copy of a runbook step: who completed it and when (checklist row)."""

    incident = models.ForeignKey(Incident, related_name="steps", on_delete=models.CASCADE)
    runbook_step = models.ForeignKey(RunbookStep, null=True, on_delete=models.SET_NULL, related_name="+")
    role = models.CharField(_("角色"), max_length=20, choices=StepRole.choices)
    position = models.PositiveSmallIntegerField(_("顺序"))
    title = models.CharField(_("步骤"), max_length=200)
    instructions = models.TextField(_("说明"), blank=True)
    title_en = models.CharField(_("英文步骤"), max_length=200, blank=True)
    instructions_en = models.TextField(_("英文说明"), blank=True)
    action = models.CharField(_("一键动作"), max_length=24, choices=StepAction.choices, blank=True)
    action_param = models.CharField(max_length=300, blank=True)
    completed_at = models.DateTimeField(_("完成时间"), null=True, blank=True)
    completed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    # When the step became available: the incident's checklist was created (its runbook attached).
    available_at = models.DateTimeField(_("可开始时间"), null=True, blank=True)
    # Time from when the step could be done (it became available, and the role's earlier steps were
    # done) to its completion; stored for fast "slowest steps" analytics.
    duration_ms = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["incident", "role", "position"]
        indexes = [models.Index(fields=["incident", "role"]), models.Index(fields=["title", "role"])]
        verbose_name = _("处置清单项")
        verbose_name_plural = _("处置清单项")

    @property
    def display_title(self):
        return pick(self.title, self.title_en)

    @property
    def display_instructions(self):
        return pick(self.instructions, self.instructions_en)

    def started_at(self, completed_earlier):
        """When this step could start: available, and the role's earlier steps (`completed_earlier`: their
        completion times) done. Steps done out of order do not count for the ones before them."""
        return max(filter(None, [self.available_at or self.incident.detected_at, *completed_earlier]))

    @property
    def duration_s(self):
        return None if self.duration_ms is None else round(self.duration_ms / 1000, 1)


class TimelineKind(models.TextChoices):
    DETECTION = "detection", _("发现")
    ALERT = "alert", _("告警")
    SWITCH = "switch", _("切换")
    ANNOUNCEMENT = "announcement", _("公告")
    HOST_CUE = "host_cue", _("主播提示")
    CONTROL = "control", _("操作")
    STEP = "step", _("预案步骤")
    COMPENSATION = "compensation", _("补偿活动")
    NOTE = "note", _("备注")
    MILESTONE = "milestone", _("里程碑")
    CORRECTION = "correction", _("时间修正")
    UPDATE = "update", _("变更")
    PAGE = "page", _("通知")
    OWNERSHIP = "ownership", _("指挥")
    MERGE = "merge", _("合并")


# Kinds that are noise when no person wrote them (health, auto switches, the media worker's controls).
NOISE_KINDS = (TimelineKind.ALERT, TimelineKind.SWITCH, TimelineKind.CONTROL)


class IncidentTimelineEntry(AppendOnlyModel):
    """Append-only typed timeline row; only the `pinned` flag may change afterwards."""

    incident = models.ForeignKey(Incident, related_name="timeline", on_delete=models.CASCADE)
    at = models.DateTimeField(_("时间"), default=timezone.now)
    kind = models.CharField(_("类型"), max_length=16, choices=TimelineKind.choices)
    text = models.CharField(_("内容"), max_length=500)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_label = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict, blank=True)
    pinned = models.BooleanField(_("置顶"), default=False)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["incident", "at"]), models.Index(fields=["kind", "incident"])]
        verbose_name = _("时间线条目")
        verbose_name_plural = _("时间线条目")

    def save(self, *args, **kwargs):
        if not self._state.adding and set(kwargs.get("update_fields") or ()) == {"pinned"}:
            return models.Model.save(self, *args, **kwargs)
        return super().save(*args, **kwargs)

    @property
    def display_text(self):
        """In the reader's language when the entry was written as a message; as stored otherwise."""
        msg = (self.data or {}).get("msg")
        return render(msg, fallback=self.text) if msg else self.text

    @property
    def who(self):
        return self.actor.get_username() if self.actor_id else actor_label(self.actor_label or "system")

    @property
    def is_noise(self):
        """System chatter people can hide: alerts, automatic switches and controls, repeated detections."""
        if self.actor_id is not None:
            return False
        return self.kind in NOISE_KINDS or bool((self.data or {}).get("repeat"))


class IncidentReview(models.Model):
    """Post-incident review (复盘); signing it off moves the incident to reviewed."""

    incident = models.OneToOneField(Incident, related_name="review", on_delete=models.CASCADE)
    root_cause = models.TextField(_("根本原因"), blank=True)
    went_well = models.TextField(_("做得好的"), blank=True)
    to_improve = models.TextField(_("待改进"), blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    signed_off_at = models.DateTimeField(_("签核时间"), null=True, blank=True)
    signed_off_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="+")

    class Meta:
        verbose_name = _("复盘")
        verbose_name_plural = _("复盘")


class ReviewActionItem(models.Model):
    review = models.ForeignKey(IncidentReview, related_name="action_items", on_delete=models.CASCADE)
    text = models.CharField(_("改进项"), max_length=300)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("负责人"), null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="+")
    due_date = models.DateField(_("截止日期"), null=True, blank=True)
    done = models.BooleanField(_("已完成"), default=False)

    class Meta:
        ordering = ["due_date", "id"]
        verbose_name = _("改进项")
        verbose_name_plural = _("改进项")


class StepDurationDaily(models.Model):
    """Daily rollup of completed runbook steps (Beijing date of completion), kept by complete_step.

    "Slowest steps" reads this instead of aggregating every IncidentStep row per request.
    """

    day = models.DateField()
    role = models.CharField(max_length=20, choices=StepRole.choices)
    title = models.CharField(max_length=200)
    is_drill = models.BooleanField(default=False)
    n = models.PositiveIntegerField(default=0)
    total_ms = models.BigIntegerField(default=0)
    max_ms = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "role", "title", "is_drill"], name="one_step_rollup_per_day")]
        indexes = [models.Index(fields=["is_drill", "day"])]
        verbose_name = _("步骤用时日汇总")
        verbose_name_plural = _("步骤用时日汇总")


class IncidentFact(models.Model):
    """Narrow copy of each incident's analytic columns, kept by a PostgreSQL trigger (migration 0008).

    Analytics scan this instead of the wide incident rows (title/cause/handling/outcome/context cost
    ≈ 30 % of the CPU in tuple deforming). Never written by Python; empty on SQLite.
    """

    incident = models.OneToOneField(Incident, primary_key=True, related_name="fact", on_delete=models.CASCADE)
    room_id = models.BigIntegerField()
    incident_type_id = models.BigIntegerField()
    severity = models.PositiveSmallIntegerField()
    counted = models.BooleanField()  # production: not a drill, not cancelled
    detected_at = models.DateTimeField()
    local_hour = models.SmallIntegerField()
    local_dow = models.SmallIntegerField()
    week = models.DateField()
    mtta_s = models.FloatField(null=True)
    mttm_s = models.FloatField(null=True)
    mttr_s = models.FloatField(null=True)
    announce_s = models.FloatField(null=True)
    downtime_s = models.FloatField(null=True)

    class Meta:
        indexes = [models.Index(fields=["counted", "detected_at"], name="incident_fact_window")]
        verbose_name = _("事故分析行")
        verbose_name_plural = _("事故分析行")


# --- Paging: duty roster, group robots, deliveries -------------------------------------------------

WEEKDAYS = "1234567"  # ISO weekdays, Monday = 1


class DutyShift(models.Model):
    """Someone on duty for a role on some weekdays between two Beijing times.

    `ends` at or before `starts` crosses midnight: the shift belongs to the weekday it starts on
    (Friday 22:00-02:00 covers Saturday 01:00). starts == ends is a 24-hour shift.
    """

    role = models.CharField(_("角色"), max_length=20)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("值班人"), on_delete=models.CASCADE,
                             related_name="duty_shifts")
    weekdays = models.CharField(_("星期"), max_length=7, default=WEEKDAYS)
    starts = models.TimeField(_("开始"))
    ends = models.TimeField(_("结束"))
    # Mentioned in group-robot messages where the platform can (@手机号 on DingTalk).
    mobile = models.CharField(_("手机号"), max_length=20, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["role", "starts", "id"]
        verbose_name = _("值班")
        verbose_name_plural = _("值班表")

    def covers(self, local_dt):
        """Is this shift on at `local_dt` (an Asia/Shanghai wall-clock datetime)?"""
        t = local_dt.time().replace(tzinfo=None)
        today = str(local_dt.isoweekday())
        yesterday = str((local_dt - timezone.timedelta(days=1)).isoweekday())
        if self.starts == self.ends:
            return today in self.weekdays
        if self.starts < self.ends:
            return today in self.weekdays and self.starts <= t < self.ends
        return (today in self.weekdays and t >= self.starts) or (yesterday in self.weekdays and t < self.ends)


class PagingRobot(models.Model):
    """A chat group's robot that receives pages for some roles. The URL (WeCom's carries its key) and
    the signing secret are credentials: shown masked once saved, never logged."""

    class Platform(models.TextChoices):
        WECOM = "wecom", _("企业微信群机器人")
        DINGTALK = "dingtalk", _("钉钉自定义机器人")
        FEISHU = "feishu", _("飞书自定义机器人")

    name = models.CharField(_("名称"), max_length=60)
    platform = models.CharField(_("平台"), max_length=12, choices=Platform.choices)
    webhook_url = models.CharField(_("Webhook 地址"), max_length=500)
    secret = models.CharField(_("签名密钥"), max_length=200, blank=True)
    roles = models.JSONField(_("接收角色"), default=list)
    enabled = models.BooleanField(_("启用"), default=True)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("群机器人")
        verbose_name_plural = _("群机器人")

    def __str__(self):
        return self.name

    @staticmethod
    def mask(value):
        if not value:
            return ""
        return "••••" + value[-4:] if len(value) > 8 else "••••"

    @property
    def masked_url(self):
        from urllib.parse import urlsplit

        parts = urlsplit(self.webhook_url)
        return f"{parts.scheme}://{parts.netloc}/••••{self.webhook_url[-4:]}"

    @property
    def masked_secret(self):
        return self.mask(self.secret)


class PageDelivery(models.Model):
    """One page (a round of an incident) to one robot; retried with backoff until sent or out of attempts."""

    class Status(models.TextChoices):
        PENDING = "pending", _("待发送")
        SENT = "sent", _("已送达")
        FAILED = "failed", _("发送失败")

    incident = models.ForeignKey(Incident, related_name="page_deliveries", on_delete=models.CASCADE)
    robot = models.ForeignKey(PagingRobot, related_name="deliveries", null=True, on_delete=models.SET_NULL)
    round = models.PositiveSmallIntegerField(default=1)
    roles = models.JSONField(default=list)
    escalated = models.BooleanField(default=False)
    claim_nonce = models.CharField(max_length=32)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]
        constraints = [models.UniqueConstraint(fields=["incident", "round", "robot"], name="one_delivery_per_round_robot")]
        verbose_name = _("通知")
        verbose_name_plural = _("通知")


class DeliveryLog(AppendOnlyModel):
    """One attempt to deliver a page: what the platform answered (never the URL or the secret)."""

    delivery = models.ForeignKey(PageDelivery, related_name="log", on_delete=models.CASCADE)
    attempt = models.PositiveSmallIntegerField()
    at = models.DateTimeField(default=timezone.now)
    ok = models.BooleanField(default=False)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.CharField(max_length=1000, blank=True)
    error = models.CharField(max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("通知投递记录")
        verbose_name_plural = _("通知投递记录")


class ClaimLink(models.Model):
    """The single-use "我来处理" link of one page round (the signed token carries `nonce`)."""

    nonce = models.CharField(max_length=32, unique=True)
    incident = models.ForeignKey(Incident, related_name="claim_links", on_delete=models.CASCADE)
    round = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
