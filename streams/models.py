import hashlib
import hmac
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class SlateAsset(models.Model):
    """A holding slate: a still image or a short looped video (e.g. a product intro)."""

    class Kind(models.TextChoices):
        IMAGE = "image", _("图片")
        VIDEO = "video", _("短视频")

    name = models.CharField(_("名称"), max_length=100)
    kind = models.CharField(_("类型"), max_length=10, choices=Kind.choices, default=Kind.IMAGE)
    file = models.FileField(_("文件"), upload_to="slates/")
    has_audio = models.BooleanField(_("带音频"), default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("垫片")
        verbose_name_plural = _("垫片")

    def __str__(self):
        return self.name


class LiveRoom(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("未开播")
        LIVE = "live", _("直播中")
        ENDED = "ended", _("已结束")

    class Source(models.TextChoices):
        PRIMARY = "primary", _("主线路")
        BACKUP = "backup", _("备用线路")
        SLATE = "slate", _("垫片")

    class RevertMode(models.TextChoices):
        PRIMARY_PREFERRED = "primary_preferred", _("主线路优先(恢复后切回)")
        STICKY = "sticky", _("保持(不自动切回)")

    name = models.CharField(_("直播间"), max_length=100)
    slug = models.SlugField(_("标识"), max_length=50, unique=True)
    merchant = models.CharField(_("商家"), max_length=100)
    host_name = models.CharField(_("主播"), max_length=100, blank=True)
    status = models.CharField(_("状态"), max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    program_source = models.CharField(_("节目源"), max_length=10, choices=Source.choices, default=Source.PRIMARY)
    # The line that was on air before the slate, so "end slate" knows where to go back.
    source_before_slate = models.CharField(max_length=10, choices=Source.choices, default=Source.PRIMARY)
    slate = models.ForeignKey(SlateAsset, verbose_name=_("垫片"), null=True, blank=True, on_delete=models.SET_NULL)

    # Automatic failover, modelled on broadcast encoders' hot-standby settings.
    auto_failover = models.BooleanField(_("自动切换"), default=True)
    input_loss_ms = models.PositiveIntegerField(
        _("断流判定(毫秒)"), default=300, validators=[MinValueValidator(100), MaxValueValidator(5000)]
    )
    frozen_ms = models.PositiveIntegerField(
        _("画面冻结判定(毫秒)"), default=2000, validators=[MinValueValidator(200), MaxValueValidator(30000)]
    )
    black_ms = models.PositiveIntegerField(
        _("黑屏判定(毫秒)"), default=1000, validators=[MinValueValidator(200), MaxValueValidator(30000)]
    )
    black_luma_threshold = models.PositiveSmallIntegerField(
        _("黑屏亮度阈值"), default=24, validators=[MaxValueValidator(255)]
    )
    silence_ms = models.PositiveIntegerField(
        _("静音判定(毫秒)"), default=1000, validators=[MinValueValidator(200), MaxValueValidator(30000)]
    )
    silence_dbfs = models.SmallIntegerField(
        _("静音阈值(dBFS)"), default=-50, validators=[MinValueValidator(-90), MaxValueValidator(0)]
    )
    revert_mode = models.CharField(
        _("恢复策略"), max_length=20, choices=RevertMode.choices, default=RevertMode.PRIMARY_PREFERRED
    )
    revert_after_s = models.PositiveIntegerField(
        _("恢复后切回(秒)"), default=10, validators=[MinValueValidator(1), MaxValueValidator(3600)]
    )
    max_auto_switches = models.PositiveSmallIntegerField(_("防抖:窗口内最多自动切换次数"), default=2)
    auto_switch_window_s = models.PositiveIntegerField(_("防抖窗口(秒)"), default=60)
    # Health thresholds (the tile says "degraded" and why; they do not switch the program).
    degraded_fps_pct = models.PositiveSmallIntegerField(
        _("帧率劣化阈值(占正常帧率 %)"), default=60, validators=[MinValueValidator(10), MaxValueValidator(100)]
    )
    degraded_loss_pct = models.FloatField(
        _("丢包劣化阈值(%)"), default=5.0, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    degraded_jitter_ms = models.PositiveIntegerField(
        _("抖动劣化阈值(毫秒)"), default=50, validators=[MinValueValidator(1), MaxValueValidator(5000)]
    )
    degraded_bitrate_drop_pct = models.PositiveSmallIntegerField(
        _("码率下降劣化阈值(%)"), default=50, validators=[MinValueValidator(10), MaxValueValidator(100)]
    )

    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name = _("直播间")
        verbose_name_plural = _("直播间")
        permissions = [
            ("switch_program", "Switch program source / slate"),
            ("control_lines", "Request keyframes, restart ingest lines"),
            ("post_announcement", "Pin announcements, send host cues, post chat replies"),
            ("declare_incident", "Open an incident for a room"),
            ("view_audit", "Read the audit log of control actions"),
        ]

    def __str__(self):
        return self.name

    @property
    def group_name(self):
        """Channel-layer group for operator traffic about this room."""
        return f"room-{self.slug}"


def hash_token(raw):
    return hashlib.sha256(raw.encode()).hexdigest()


class IngestLine(models.Model):
    class Role(models.TextChoices):
        PRIMARY = "primary", _("主线路")
        BACKUP = "backup", _("备用线路")

    class State(models.TextChoices):
        IDLE = "idle", _("未连接")
        CONNECTING = "connecting", _("连接中")
        CONNECTED = "connected", _("已连接")
        FAILED = "failed", _("失败")

    class Kind(models.TextChoices):
        WHIP = "whip", _("WebRTC (WHIP)")
        RTMP = "rtmp", _("RTMP")

    room = models.ForeignKey(LiveRoom, related_name="lines", on_delete=models.CASCADE)
    role = models.CharField(_("线路"), max_length=10, choices=Role.choices)
    # How the encoder reaches us: WHIP straight to the media worker, or RTMP to the ingest edge (nginx-rtmp),
    # from which the worker pulls the line.
    kind = models.CharField(_("推流协议"), max_length=8, choices=Kind.choices, default=Kind.WHIP)
    # The edge's client id of the RTMP publisher it accepted for this line (blank: none publishing). The
    # media worker pulls the line while it is set; a new id (the encoder reconnected) starts a fresh pull.
    rtmp_client = models.CharField(max_length=32, blank=True, editable=False)
    # Publish tokens are stored hashed; the raw token is shown once when (re)generated.
    token_hash = models.CharField(max_length=64, editable=False)
    token_hint = models.CharField(max_length=8, editable=False, blank=True)
    state = models.CharField(_("连接状态"), max_length=12, choices=State.choices, default=State.IDLE)
    state_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["room", "role"], name="one_line_per_role")]
        ordering = ["room", "role"]
        verbose_name = _("推流线路")
        verbose_name_plural = _("推流线路")

    def __str__(self):
        return f"{self.room.slug}/{self.role}"

    def set_token(self, raw=None):
        """Store a new publish token (hashed); return the raw token to show once."""
        raw = raw or secrets.token_urlsafe(24)
        self.token_hash = hash_token(raw)
        self.token_hint = raw[-4:]
        return raw

    def check_token(self, raw):
        return bool(raw) and bool(self.token_hash) and hmac.compare_digest(self.token_hash, hash_token(raw))

    @property
    def rtmp_stream_name(self):
        """The name the edge publishes this line under once the key is accepted (no token in it)."""
        return f"{self.room.slug}.{self.role}"

    @staticmethod
    def parse_rtmp_key(key):
        """(room slug, role, token) from an RTMP stream key `<room>.<role>.<token>`; token "" when absent
        (the renamed stream). None for anything else."""
        parts = key.split(".")
        if len(parts) not in (2, 3) or parts[1] not in IngestLine.Role.values or not parts[0]:
            return None
        return parts[0], parts[1], parts[2] if len(parts) == 3 else ""


class AppendOnlyModel(models.Model):
    """Rows are written once: history is never edited in place (they double as an outbox)."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValidationError(f"{type(self).__name__} rows are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError(f"{type(self).__name__} rows are append-only.")


class AuditRow(AppendOnlyModel):
    """The columns of the audit log, shared by the hot table and its archive."""

    class Outcome(models.TextChoices):
        OK = "ok", _("成功")
        FAILED = "failed", _("失败")
        REFUSED = "refused", _("拒绝")

    created_at = models.DateTimeField(_("时间"), default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("操作人"), null=True, blank=True, on_delete=models.PROTECT
    )
    # Who did it when no user did: "auto" (failover rule), "mediaworker", "system".
    actor_label = models.CharField(max_length=64, blank=True)
    room = models.ForeignKey(LiveRoom, verbose_name=_("直播间"), null=True, blank=True, on_delete=models.PROTECT)
    action = models.CharField(_("动作"), max_length=64, db_index=True)
    target = models.CharField(_("对象"), max_length=64, blank=True)
    reason = models.CharField(_("原因"), max_length=200, blank=True)
    outcome = models.CharField(_("结果"), max_length=10, choices=Outcome.choices, default=Outcome.OK)
    latency_ms = models.FloatField(_("耗时(毫秒)"), null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        abstract = True

    # --- as people read it (audit page, exports, room history) ---

    @property
    def action_label(self):
        from .action_labels import action_label

        return action_label(self.action)

    @property
    def who(self):
        from .action_labels import actor_label

        return self.actor.get_username() if self.actor_id else actor_label(self.actor_label or "system")

    @property
    def target_label(self):
        """A line or source by its label; other targets (a campaign or incident number) as they are."""
        labels = dict(LiveRoom.Source.choices) | {"program": _("节目输出")}
        if self.target.isdigit():  # an incident's or a campaign's number
            return f"#{self.target}"
        return labels.get(self.target, self.target)

    @property
    def reason_label(self):
        """ "auto:<trigger> ..." as "自动:<trigger's label>", "manual: ..." without its prefix."""
        reason = self.reason or ""
        if reason.startswith("auto:"):
            trigger = (reason[len("auto:"):].split() or [""])[0]
            return _("自动:%(trigger)s") % {"trigger": FAILOVER_TRIGGER_LABELS.get(trigger, trigger)}
        if reason.startswith("manual:"):
            return reason[len("manual:"):].strip()
        from .action_labels import REASON_LABELS

        return REASON_LABELS.get(reason, reason)

    def __str__(self):
        who = self.actor.get_username() if self.actor_id else self.actor_label
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {who} {self.action} {self.target}"


class ControlAction(AuditRow):
    """Append-only audit of every action: by a person, the media worker, or a rule."""

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["room", "-created_at"])]
        verbose_name = _("操作记录")
        verbose_name_plural = _("操作记录")


class ControlActionArchive(AuditRow):
    """Audit rows older than RETENTION_AUDIT_HOT_DAYS, moved out of the hot table (same id), never deleted."""

    id = models.BigIntegerField(primary_key=True)
    archived_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["room", "-created_at"], name="streams_cta_room_created")]
        verbose_name = _("操作记录(归档)")
        verbose_name_plural = _("操作记录(归档)")


# What made the media worker switch automatically (engine triggers), as operators read them.
FAILOVER_TRIGGER_LABELS = {"input_loss": _("无输入"), "frozen": _("画面冻结"), "black": _("黑屏"), "silence": _("静音"),
                           "revert": _("回切主线路"), "recovered": _("线路恢复")}


class Alert(models.Model):
    """Something an operator should look at: a line degraded or down, a failover, a hold."""

    class Kind(models.TextChoices):
        LINE_DEGRADED = "line_degraded", _("线路劣化")
        LINE_DOWN = "line_down", _("线路中断")
        LINE_RECOVERED = "line_recovered", _("线路恢复")
        AUTO_FAILOVER = "auto_failover", _("自动切换")
        FAILOVER_HOLD = "failover_hold", _("自动切换已暂停(防抖)")
        WORKER_OVERLOADED = "worker_overloaded", _("媒体处理进程过载")
        PUSH_FAILED = "push_failed", _("推流失败")
        OTHER = "other", _("其他")

    class Severity(models.TextChoices):
        INFO = "info", _("提示")
        WARNING = "warning", _("警告")
        CRITICAL = "critical", _("严重")

    class AckAs(models.TextChoices):
        SEEN = "seen", _("已知悉")
        INCIDENT = "incident", _("转为事故")

    room = models.ForeignKey(LiveRoom, related_name="alerts", on_delete=models.CASCADE)
    line_role = models.CharField(max_length=10, blank=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    message = models.CharField(max_length=300)
    detail = models.JSONField(default=dict, blank=True)
    raised_at = models.DateTimeField(default=timezone.now, db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_as = models.CharField(max_length=10, choices=AckAs.choices, blank=True)
    # A repeat of an open alert (same room and kind) updates it in place: how often, and when last.
    count = models.PositiveIntegerField(_("次数"), default=1)
    last_seen_at = models.DateTimeField(_("最近一次"), default=timezone.now)

    class Meta:
        ordering = ["-raised_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["room", "kind"], condition=models.Q(acknowledged_at__isnull=True),
                                    name="one_open_alert_per_room_and_kind")
        ]
        verbose_name = _("告警")
        verbose_name_plural = _("告警")

    def __str__(self):
        return f"{self.room.slug} {self.kind} {self.message}"

    @classmethod
    def describe(cls, kind, detail):
        """The message of an automatic alert, from its kind and detail, in the active language."""
        d = detail or {}
        sources = dict(LiveRoom.Source.choices)
        trigger = FAILOVER_TRIGGER_LABELS.get(d.get("trigger"), d.get("trigger") or "")
        if kind == cls.Kind.AUTO_FAILOVER and "to" in d:
            return _("自动切换 %(from)s → %(to)s(%(trigger)s)") % {
                "from": sources.get(d.get("from"), d.get("from")), "to": sources.get(d["to"], d["to"]),
                "trigger": trigger}
        if kind == cls.Kind.FAILOVER_HOLD and "window_s" in d:
            text = _("自动切换已暂停:%(window)s 秒内已切换 %(n)s 次,请人工处理(%(trigger)s)") % {
                "window": d["window_s"], "n": d.get("switches_in_window"), "trigger": trigger}
            if d.get("refused", 1) > 1:
                text += _(",已拒绝 %(refused)s 次自动切换") % {"refused": d["refused"]}
            return text
        if kind == cls.Kind.WORKER_OVERLOADED and "lag_ms" in d:
            return _("媒体处理进程运行滞后(延迟 %(lag)s 毫秒):画面中断暂不判为线路故障,自动切换暂缓") % {
                "lag": d["lag_ms"]}
        if kind == cls.Kind.PUSH_FAILED and "platform" in d:
            platform = dict(PushDestination.Platform.choices).get(d["platform"], d["platform"])
            return _("推流到%(platform)s失败(已重试 %(n)s 次):%(error)s") % {
                "platform": platform, "n": d.get("reconnects", 0), "error": d.get("last_error") or "—"}
        return None

    @property
    def text(self):
        """What the reader sees: automatic alerts in the reader's language, others as written."""
        return self.describe(self.kind, self.detail) or self.message


class HealthSample(models.Model):
    """Line/output health downsampled to one row per 10 s, for history and analysis."""

    room = models.ForeignKey(LiveRoom, related_name="health_samples", on_delete=models.CASCADE)
    line_role = models.CharField(max_length=10)  # primary / backup / program
    at = models.DateTimeField(db_index=True)
    connected = models.BooleanField(default=False)
    bitrate_kbps = models.FloatField(null=True)
    fps = models.FloatField(null=True)
    loss_pct = models.FloatField(null=True)
    jitter_ms = models.FloatField(null=True)
    frozen = models.BooleanField(default=False)
    black = models.BooleanField(default=False)
    silent = models.BooleanField(default=False)
    audio_dbfs = models.FloatField(null=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        # On PostgreSQL the table is partitioned by day on `at` (pg_partman; migration
        # 0012_partition_health_samples): its primary key is (id, at) there, `id` stays unique by its sequence.
        indexes = [
            models.Index(fields=["room", "line_role", "-at"]),  # newest sample per line, a line's last minutes
            models.Index(fields=["room", "at"], name="streams_hs_room_at"),  # a room's samples since t (wall graphs)
        ]
        verbose_name = _("健康采样")
        verbose_name_plural = _("健康采样")


class HealthMinute(models.Model):
    """One minute of a line's health samples: min / mean / max per metric (kept far longer than samples)."""

    room = models.ForeignKey(LiveRoom, related_name="+", on_delete=models.CASCADE)
    line_role = models.CharField(max_length=10)
    minute = models.DateTimeField()
    samples = models.PositiveIntegerField()
    connected_samples = models.PositiveIntegerField(default=0)
    frozen_samples = models.PositiveIntegerField(default=0)
    black_samples = models.PositiveIntegerField(default=0)
    silent_samples = models.PositiveIntegerField(default=0)
    bitrate_kbps_min = models.FloatField(null=True)
    bitrate_kbps_mean = models.FloatField(null=True)
    bitrate_kbps_max = models.FloatField(null=True)
    fps_min = models.FloatField(null=True)
    fps_mean = models.FloatField(null=True)
    fps_max = models.FloatField(null=True)
    loss_pct_min = models.FloatField(null=True)
    loss_pct_mean = models.FloatField(null=True)
    loss_pct_max = models.FloatField(null=True)
    jitter_ms_min = models.FloatField(null=True)
    jitter_ms_mean = models.FloatField(null=True)
    jitter_ms_max = models.FloatField(null=True)
    audio_dbfs_min = models.FloatField(null=True)
    audio_dbfs_mean = models.FloatField(null=True)
    audio_dbfs_max = models.FloatField(null=True)

    METRICS = ("bitrate_kbps", "fps", "loss_pct", "jitter_ms", "audio_dbfs")

    class Meta:
        # Partitioned by month on PostgreSQL (like HealthSample); the unique key includes the partition key.
        constraints = [models.UniqueConstraint(fields=["room", "line_role", "minute"], name="one_health_minute")]
        verbose_name = _("健康分钟汇总")
        verbose_name_plural = _("健康分钟汇总")


class RetentionJob(models.Model):
    """What a data-lifecycle job did last, and where it stopped (a killed run resumes from `watermark`)."""

    name = models.CharField(max_length=40, unique=True)
    watermark = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(null=True)
    seconds = models.FloatField(null=True)
    report = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("数据保留任务")
        verbose_name_plural = _("数据保留任务")


class LiveSession(models.Model):
    """One on-air interval of a room, from its status changes (live hours for failure rates)."""

    room = models.ForeignKey(LiveRoom, related_name="live_sessions", on_delete=models.CASCADE)
    started_at = models.DateTimeField(db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("开播记录")
        verbose_name_plural = _("开播记录")


class Viewer(models.Model):
    """A person watching: a logged-in account or an anonymous device id cookie.

    A viewer is *identified* when the platform vouches for it: a platform-signed token accepted by the
    viewer page, or an audience imported from the platform. Only identified viewers of the room's
    merchant are eligible for compensation by default (see docs/security.md).
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    device_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    nickname = models.CharField(max_length=50, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    platform_merchant = models.CharField(_("平台商家"), max_length=100, blank=True)
    platform_user_id = models.CharField(_("平台用户 ID"), max_length=64, null=True, blank=True)
    identified_at = models.DateTimeField(_("身份确认时间"), null=True, blank=True)
    # Where the identity was last presented from: the approver's fraud panel groups by these.
    last_address = models.GenericIPAddressField(null=True, blank=True)
    last_user_agent = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = _("观众")
        verbose_name_plural = _("观众")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(user__isnull=False) | models.Q(device_id__isnull=False),
                name="viewer_has_identity",
            ),
            models.UniqueConstraint(fields=["platform_merchant", "platform_user_id"], name="one_viewer_per_platform_user",
                                    condition=models.Q(platform_user_id__isnull=False)),
        ]

    @property
    def is_identified(self):
        return self.platform_user_id is not None

    @property
    def display_name(self):
        """How the team sees this viewer: nickname, else platform user id (never our row id)."""
        return self.nickname or self.platform_user_id or str(_("匿名观众"))

    @property
    def public_name(self):
        """How the public sees this viewer (winner lists): the nickname or platform user id, masked ("张**",
        "u1****89"); never our row id, never the device cookie (a credential)."""
        if self.nickname:
            return self.nickname[0] + "**"
        name = self.platform_user_id or ""
        if len(name) > 6:
            return name[:2] + "*" * min(4, len(name) - 4) + name[-2:]
        if name:
            return name[0] + "***"
        return str(_("匿名观众"))


class ViewerTokenKey(models.Model):
    """A merchant's key for platform-signed viewer tokens (HMAC-SHA256; docs/integrators.md)."""

    merchant = models.CharField(_("商家"), max_length=100, unique=True)
    key = models.CharField(max_length=64, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("观众令牌密钥")
        verbose_name_plural = _("观众令牌密钥")

    def __str__(self):
        return self.merchant

    def __str__(self):
        return self.nickname or (f"user:{self.user_id}" if self.user_id else f"device:{self.device_id[:8]}")


class ViewerSession(models.Model):
    """A viewer's presence interval in a room: joined_at .. left_at (or last_seen_at if open)."""

    room = models.ForeignKey(LiveRoom, related_name="viewer_sessions", on_delete=models.CASCADE)
    viewer = models.ForeignKey(Viewer, related_name="sessions", on_delete=models.CASCADE)
    joined_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    left_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["room", "joined_at"]),
            models.Index(fields=["room", "last_seen_at"]),
            # Presence during a window: sessions of the room that ended (or were last seen) after its start
            # and joined before its end (viewers_present, compensation audiences).
            models.Index(models.F("room"), Coalesce("left_at", "last_seen_at"), models.F("joined_at"),
                         name="streams_vs_room_ended_joined"),
        ]
        verbose_name = _("观看记录")
        verbose_name_plural = _("观看记录")


class MediaWorkerLease(models.Model):
    """Which media worker process serves a room; expires unless renewed."""

    room = models.OneToOneField(LiveRoom, related_name="media_lease", on_delete=models.CASCADE)
    worker_id = models.CharField(max_length=64, db_index=True)
    expires_at = models.DateTimeField()

    class Meta:
        verbose_name = _("媒体工作进程租约")
        verbose_name_plural = _("媒体工作进程租约")


# --- Control-room wall, viewer page, announcements, host cues (wall issue) ------------------


def staff_text(zh, en):
    """Seeded or staff-written text with an English version: English for a reader in English, when there is one."""
    from django.utils import translation

    return en if en and (translation.get_language() or "").startswith("en") else zh


class AnnouncementTemplate(models.Model):
    """Reusable apology / follow-up text; `{eta}` is replaced by the minutes until recovery."""

    class Kind(models.TextChoices):
        APOLOGY = "apology", _("致歉")
        RESOLVED = "resolved", _("恢复通知")
        INFO = "info", _("通知")

    name = models.CharField(_("名称"), max_length=60)
    kind = models.CharField(_("类型"), max_length=10, choices=Kind.choices, default=Kind.APOLOGY)
    text = models.CharField(_("内容"), max_length=300, help_text=_("可用变量:{eta} 预计恢复分钟数"))
    # For staff reading the control room in English; viewers always get `text`.
    name_en = models.CharField(_("英文名称"), max_length=60, blank=True)
    text_en = models.CharField(_("英文内容(仅供工作人员参考)"), max_length=300, blank=True)
    default_eta_minutes = models.PositiveSmallIntegerField(_("默认预计分钟"), default=5)
    is_active = models.BooleanField(_("启用"), default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "name"]
        verbose_name = _("公告模板")
        verbose_name_plural = _("公告模板")

    def __str__(self):
        return self.name

    def render(self, eta_minutes=None):
        eta = eta_minutes if eta_minutes is not None else self.default_eta_minutes
        return self.text.replace("{eta}", str(eta))

    @property
    def display_name(self):
        return staff_text(self.name, self.name_en)

    @property
    def display_text(self):
        return staff_text(self.text, self.text_en)


class Announcement(models.Model):
    """A banner pinned on a room's viewer page; at most one pinned per room at a time."""

    room = models.ForeignKey(LiveRoom, related_name="announcements", on_delete=models.CASCADE)
    text = models.CharField(_("内容"), max_length=300)
    kind = models.CharField(max_length=10, choices=AnnouncementTemplate.Kind.choices,
                            default=AnnouncementTemplate.Kind.INFO)
    template = models.ForeignKey(AnnouncementTemplate, null=True, blank=True, on_delete=models.SET_NULL)
    eta_minutes = models.PositiveSmallIntegerField(null=True, blank=True)
    pinned_at = models.DateTimeField(default=timezone.now)
    pinned_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    unpinned_at = models.DateTimeField(null=True, blank=True)
    unpinned_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")

    class Meta:
        ordering = ["-pinned_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["room"], condition=models.Q(unpinned_at__isnull=True),
                                    name="one_pinned_announcement_per_room")
        ]
        verbose_name = _("置顶公告")
        verbose_name_plural = _("置顶公告")

    def __str__(self):
        return self.text


class CannedReply(models.Model):
    """FAQ snippet / calming reply floor control posts into chat as the room's assistant."""

    title = models.CharField(_("标题"), max_length=40)
    text = models.CharField(_("内容"), max_length=300)
    is_active = models.BooleanField(_("启用"), default=True)
    position = models.PositiveSmallIntegerField(_("排序"), default=0)
    # For staff reading the control room in English; viewers always get `text`.
    title_en = models.CharField(_("英文标题"), max_length=40, blank=True)
    text_en = models.CharField(_("英文内容(仅供工作人员参考)"), max_length=300, blank=True)

    @property
    def display_title(self):
        return staff_text(self.title, self.title_en)

    @property
    def display_text(self):
        return staff_text(self.text, self.text_en)

    class Meta:
        ordering = ["position", "id"]
        verbose_name = _("快捷回复")
        verbose_name_plural = _("快捷回复")

    def __str__(self):
        return self.title


class ChatMessage(AppendOnlyModel):
    room = models.ForeignKey(LiveRoom, related_name="chat_messages", on_delete=models.CASCADE)
    viewer = models.ForeignKey(Viewer, null=True, blank=True, on_delete=models.SET_NULL)
    author_name = models.CharField(max_length=50)
    is_assistant = models.BooleanField(default=False)
    posted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")
    text = models.CharField(max_length=300)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["room", "-created_at"])]


class HostCue(models.Model):
    """A silent cue shown on the host's teleprompter screen; the host taps to acknowledge."""

    room = models.ForeignKey(LiveRoom, related_name="host_cues", on_delete=models.CASCADE)
    text = models.CharField(_("提词"), max_length=200)
    sent_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    sent_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-sent_at", "-id"]
        verbose_name = _("主播提词")
        verbose_name_plural = _("主播提词")


class ActionNonce(AppendOnlyModel):
    """Client nonces of executed actions: a replayed message is refused, never run twice."""

    nonce = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)


class OperatorPreference(models.Model):
    class Density(models.TextChoices):
        AUTO = "auto", _("自动(20 间以上用密集)")
        NORMAL = "normal", _("标准")
        DENSE = "dense", _("密集")

    class Order(models.TextChoices):
        NAME = "name", _("按名称")
        CUSTOM = "custom", _("自定义顺序")

    DENSE_FROM_ROOMS = 20  # "auto" turns dense from this many rooms on

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="wall_preference")
    alerts_muted = models.BooleanField(_("告警静音"), default=False)
    wall_density = models.CharField(_("监控墙密度"), max_length=10, choices=Density.choices, default=Density.AUTO)
    wall_order = models.CharField(_("监控墙排序"), max_length=10, choices=Order.choices, default=Order.NAME)
    # The operator's own order of rooms (slugs, first first); rooms not in it follow by name.
    room_order = models.JSONField(default=list, blank=True)

    def dense_for(self, room_count):
        return self.wall_density == self.Density.DENSE or (
            self.wall_density == self.Density.AUTO and room_count >= self.DENSE_FROM_ROOMS)

    def ordered(self, rooms, key=lambda r: r["slug"]):
        """`rooms` (sorted by name) in this operator's order: a fixed order that never follows the rooms' state."""
        if self.wall_order != self.Order.CUSTOM or not self.room_order:
            return list(rooms)
        rank = {slug: i for i, slug in enumerate(self.room_order)}
        return sorted(rooms, key=lambda r: rank.get(key(r), len(rank)))  # stable: the rest stay by name


class AlertSnooze(models.Model):
    """A room's alerts silenced for a while: still recorded and listed, but they neither beep nor flash.

    One row per room, replaced by each snooze; `until` None means until the end of the show that was on air
    (`live_session`)."""

    room = models.OneToOneField(LiveRoom, related_name="alert_snooze", on_delete=models.CASCADE)
    until = models.DateTimeField(_("静音至"), null=True, blank=True)
    live_session = models.ForeignKey(LiveSession, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    snoozed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    # What an operator may choose: minutes, or None for "until the end of this show".
    DURATIONS = {"15m": (15, _("15 分钟")), "1h": (60, _("1 小时")), "show": (None, _("至本场结束"))}

    class Meta:
        verbose_name = _("告警静音")
        verbose_name_plural = _("告警静音")

    def is_active(self, now=None):
        if self.until is not None:
            return self.until > (now or timezone.now())
        return self.live_session_id is not None and self.live_session.ended_at is None


def validate_rtmp_url(value):
    if not value.startswith(("rtmp://", "rtmps://")) or len(value.split("/")) < 4 or not value.split("/")[2]:
        raise ValidationError(_("请填写 rtmp:// 或 rtmps:// 开头的推流地址(含应用名,例如 rtmp://push.example.com/live)"))
    if any(c.isspace() for c in value):
        raise ValidationError(_("推流地址不能包含空格"))


class PushDestination(models.Model):
    """Where a room's program is pushed: a platform's RTMP ingest (URL + stream key)."""

    class Platform(models.TextChoices):
        DOUYIN = "douyin", _("抖音")
        KUAISHOU = "kuaishou", _("快手")
        TAOBAO = "taobao", _("淘宝直播")
        CHANNELS = "channels", _("视频号")
        OTHER = "other", _("其他")

    room = models.ForeignKey(LiveRoom, related_name="push_destinations", on_delete=models.CASCADE)
    platform = models.CharField(_("平台"), max_length=16, choices=Platform.choices)
    url = models.CharField(_("推流地址"), max_length=300, validators=[validate_rtmp_url])
    # A secret the platform issues: shown masked once saved, never logged nor written to the audit log.
    stream_key = models.CharField(_("推流密钥"), max_length=300)
    enabled = models.BooleanField(_("启用"), default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["room", "id"]
        verbose_name = _("推流目的地")
        verbose_name_plural = _("推流目的地")

    def __str__(self):
        return f"{self.room.slug}/{self.get_platform_display()}"

    @property
    def masked_key(self):
        key = self.stream_key
        return "••••" + key[-4:] if len(key) >= 12 else "••••"

    @property
    def push_url(self):
        """The full publish URL (holds the key): for the media worker only."""
        return f"{self.url.rstrip('/')}/{self.stream_key}"
