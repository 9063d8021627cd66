"""Paging: the duty roster, group robots, and pages for SEV1/SEV2 incidents.

A SEV1/SEV2 incident (opened automatically or by hand, or raised to SEV2) pages the on-duty roles'
group robots: a round creates one PageDelivery per robot (and a single-use "我来处理" link), audited
and on the timeline. Each delivery is attempted by a task (Celery on Redis, the in-process pool on the
embedded default); a failed attempt is logged (DeliveryLog) and retried with backoff by `paging_tick`,
which also re-sends a page nobody acknowledged within PAGING_ACK_MINUTES, escalated to the manager on
duty. Correctness lives in the rows (attempts are leased by an UPDATE), not in the broker: a lost task
is picked up by the next tick.
"""

import logging
import secrets
import threading
import time

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from controlroom.roles import FLOOR_CONTROL, MANAGER, OPS, ROLE_LABELS, TECH_SUPPORT, require_capability

from . import robots
from .models import (
    ClaimLink,
    DeliveryLog,
    DutyShift,
    Incident,
    PageDelivery,
    PagingRobot,
    TimelineKind,
    WEEKDAYS,
)

logger = logging.getLogger(__name__)

FIRST_ROUND_ROLES = (OPS, FLOOR_CONTROL, TECH_SUPPORT)
CLAIM_SALT = "incidents.claim"


class PagingError(Exception):
    """A roster or robot edit that is refused; the message is for people."""


# --- Roster (selectors) -----------------------------------------------------------------------

def on_duty(now=None):
    """{role: [DutyShift, ...]} of the shifts on at `now` (Asia/Shanghai wall clock), every role present."""
    local = timezone.localtime(now or timezone.now())
    out = {role: [] for role in ROLE_LABELS}
    for shift in DutyShift.objects.select_related("user").filter(user__is_active=True):
        if shift.role in out and shift.covers(local):
            out[shift.role].append(shift)
    return out


def roster():
    return list(DutyShift.objects.select_related("user").order_by("role", "starts", "id"))


# --- Roster and robots (services; managers) ----------------------------------------------------

def _audit(actor, action, target="", detail=None, reason=""):
    from streams import services as stream_services

    stream_services.record_action(actor=actor, action=action, target=str(target), detail=detail or {}, reason=reason)


def _clean_weekdays(weekdays):
    days = "".join(d for d in WEEKDAYS if d in set(str(weekdays or "")))
    if not days:
        raise PagingError(_("请至少选择一天。"))
    return days


def add_shift(*, actor, role, user, weekdays, starts, ends, mobile=""):
    require_capability(actor, "edit_duty_roster")
    if role not in ROLE_LABELS:
        raise PagingError(_("未知角色。"))
    mobile = (mobile or "").strip()
    if mobile and not (mobile.isdigit() and 5 <= len(mobile) <= 20):
        raise PagingError(_("手机号只能是数字。"))
    with transaction.atomic():
        shift = DutyShift.objects.create(role=role, user=user, weekdays=_clean_weekdays(weekdays), starts=starts,
                                         ends=ends, mobile=mobile)
        _audit(actor, "duty_shift_add", shift.pk, detail={
            "role": role, "user": user.get_username(), "weekdays": shift.weekdays,
            "starts": starts.strftime("%H:%M"), "ends": ends.strftime("%H:%M")})
    return shift


def remove_shift(*, actor, shift):
    require_capability(actor, "edit_duty_roster")
    with transaction.atomic():
        detail = {"role": shift.role, "user": shift.user.get_username(), "weekdays": shift.weekdays,
                  "starts": shift.starts.strftime("%H:%M"), "ends": shift.ends.strftime("%H:%M")}
        DutyShift.objects.filter(pk=shift.pk).delete()
        _audit(actor, "duty_shift_remove", shift.pk, detail=detail)


def _check_webhook_url(url):
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 500:
        raise PagingError(_("Webhook 地址须是完整的 http(s) 地址。"))
    if any(c.isspace() for c in url):
        raise PagingError(_("Webhook 地址不能包含空白字符。"))


def save_robot(*, actor, robot=None, name, platform, webhook_url=None, secret=None, roles=(), enabled=True):
    """Create or change a robot. `webhook_url` / `secret` None (or blank on an existing robot) keep the
    saved value: the form never shows them again. The audit row says what changed, never the values."""
    require_capability(actor, "edit_paging_robots")
    name = (name or "").strip()[:60]
    if not name:
        raise PagingError(_("请填写名称。"))
    if platform not in PagingRobot.Platform.values:
        raise PagingError(_("未知平台。"))
    roles = [r for r in ROLE_LABELS if r in set(roles or ())]
    if not roles:
        raise PagingError(_("请至少选择一个接收角色。"))
    webhook_url = (webhook_url or "").strip()
    secret = (secret or "").strip()
    if robot is None and not webhook_url:
        raise PagingError(_("请填写 Webhook 地址。"))
    if webhook_url:
        _check_webhook_url(webhook_url)
    with transaction.atomic():
        if robot is None:
            robot = PagingRobot(name=name, platform=platform, webhook_url=webhook_url, secret=secret)
            changed = ["created"]
        else:
            robot = PagingRobot.objects.select_for_update().get(pk=robot.pk)
            changed = [f for f, new in (("name", name), ("platform", platform), ("roles", roles), ("enabled", enabled))
                       if getattr(robot, f) != new]
            if webhook_url and webhook_url != robot.webhook_url:
                changed.append("webhook_url")
                robot.webhook_url = webhook_url
            if secret and secret != robot.secret:
                changed.append("secret")
                robot.secret = secret
        robot.name, robot.platform, robot.roles, robot.enabled = name, platform, roles, bool(enabled)
        robot.updated_at, robot.updated_by = timezone.now(), actor
        robot.save()
        if changed:
            _audit(actor, "paging_robot_save", robot.pk,
                   detail={"name": name, "platform": platform, "roles": roles, "enabled": bool(enabled),
                           "changed": changed})
    return robot


def send_test(*, actor, robot):
    """A manager checks a robot: one test message now (not a page: no delivery rows, no retries)."""
    require_capability(actor, "edit_paging_robots")
    with translation.override(settings.LANGUAGE_CODE):
        site = settings.SITE_URL
        message = robots.Message(
            title=_("【测试】直播中控台通知"), lines=[_("这是一条测试消息,收到说明群机器人配置正确。")],
            link_label=_("值班与通知"), link_url=site + reverse("incidents:duty"),
            claim_label=_("查看进行中的事故"), claim_url=site + reverse("incidents:open_list"), urgent=False)
    result = robots.send(robot.platform, robot.webhook_url, robot.secret, message, settings.PAGING_HTTP_TIMEOUT_S)
    _audit(actor, "paging_robot_test", robot.pk, detail={"ok": result.ok, "http_status": result.http_status,
                                                         "error": result.error[:200]})
    return result


# --- Pages ------------------------------------------------------------------------------------

def claim_token(link):
    return signing.dumps({"n": link.nonce}, salt=CLAIM_SALT, compress=True)


def read_claim_token(token):
    """The ClaimLink of a token; raises signing.SignatureExpired / BadSignature / ClaimLink.DoesNotExist."""
    data = signing.loads(token, salt=CLAIM_SALT, max_age=settings.PAGING_CLAIM_LINK_HOURS * 3600)
    return ClaimLink.objects.select_related("incident", "used_by").get(nonce=str(data.get("n", "")))


def page_on_commit(incident_id):
    """After the opening transaction commits: write the first round (a few rows; the webhook calls go to
    the background). A failure here never fails the opening: the tick pages what was missed."""
    ensure_local_ticker()
    try:
        page_incident(incident_id, 1)
    except Exception:  # noqa: BLE001
        logger.exception("paging incident %s failed; the paging tick retries", incident_id)


def page_incident(incident_id, round_no=1, now=None):
    """Create round `round_no` of an incident's page: one delivery per matching enabled robot.

    Idempotent: a round that exists already (a duplicated task, two ticks) creates nothing (None).
    Returns the new deliveries (queued after commit; empty when no robot takes these roles).
    """
    from controlroom.background import enqueue

    from .services import _audit as incident_audit
    from .services import add_timeline_entry
    from .tasks import deliver_task

    now = now or timezone.now()
    with transaction.atomic():
        incident = (Incident.objects.select_for_update().select_related("room", "incident_type")
                    .filter(pk=incident_id).first())
        if incident is None or incident.page_round >= round_no or not incident.is_open or not incident.pages_people:
            return None
        if round_no > 1 and incident.is_taken:
            return None
        escalated = round_no > 1
        roles = list(FIRST_ROUND_ROLES) + ([MANAGER] if escalated else [])
        robots_ = [r for r in PagingRobot.objects.filter(enabled=True) if set(r.roles) & set(roles)]
        if not robots_:
            logger.warning("incident %s: no enabled group robot takes roles %s; nobody was paged", incident.pk, roles)
            return None
        link = ClaimLink.objects.create(nonce=secrets.token_hex(16), incident=incident, round=round_no)
        deliveries = PageDelivery.objects.bulk_create([
            PageDelivery(incident=incident, robot=robot, round=round_no, roles=roles, escalated=escalated,
                         claim_nonce=link.nonce, next_attempt_at=timezone.now(), created_at=now)
            for robot in robots_
        ])
        incident.page_round = round_no
        incident.last_paged_at = now
        incident.save(update_fields=["page_round", "last_paged_at"])
        duty = on_duty(now)
        with translation.override(settings.LANGUAGE_CODE):  # stored text: the site's language
            names = "、".join(f"{ROLE_LABELS[r]} {'/'.join(s.user.get_username() for s in duty[r]) or '—'}"
                             for r in roles)
            if escalated:
                text = _("%(min)s 分钟无人响应,第 %(n)s 次通知并升级至值班经理:%(who)s") % {
                    "min": settings.PAGING_ACK_MINUTES, "n": round_no, "who": names}
            else:
                text = _("已通知值班人员:%(who)s(%(k)s 个群机器人)") % {"who": names, "k": len(robots_)}
        add_timeline_entry(incident=incident, kind=TimelineKind.PAGE, text=text, actor_label="paging",
                           data={"round": round_no, "roles": roles, "robots": [r.pk for r in robots_],
                                 "escalated": escalated}, at=now)
        incident_audit(None, "incident_page", incident, reason=f"round {round_no}",
                       detail={"round": round_no, "roles": roles, "robots": [r.pk for r in robots_],
                               "escalated": escalated})
        for delivery in deliveries:
            enqueue(deliver_task, delivery.pk)
    return deliveries


def _message(delivery, incident, duty):
    """The page's text in the site language, times in Asia/Shanghai."""
    with translation.override(settings.LANGUAGE_CODE):
        link = ClaimLink.objects.get(nonce=delivery.claim_nonce)
        sev = f"SEV{incident.severity}"
        title = (_("【升级·第 %(n)s 次】") % {"n": delivery.round} if delivery.escalated else "") + \
            f"【{sev}】{incident.room.name} · {incident.incident_type.name}"
        people = []
        mobiles = []
        for role in delivery.roles:
            shifts = duty.get(role, [])
            people.append(f"{ROLE_LABELS[role]}:{'、'.join(s.user.get_username() for s in shifts) or '—'}")
            mobiles += [s.mobile for s in shifts if s.mobile]
        lines = [
            _("直播间:%(room)s(%(merchant)s)") % {"room": incident.room.name, "merchant": incident.room.merchant},
            _("事故:#%(id)s %(title)s") % {"id": incident.pk, "title": incident.title},
            _("级别:%(sev)s · 状态:%(status)s") % {"sev": sev, "status": incident.get_status_display()},
            _("发现时间:%(at)s(北京时间)") % {"at": timezone.localtime(incident.detected_at).strftime("%m-%d %H:%M:%S")},
            _("值班:%(people)s") % {"people": ";".join(people)},
        ]
        if delivery.escalated:
            lines.append(_("%(min)s 分钟内无人响应,已升级至值班经理。") % {"min": settings.PAGING_ACK_MINUTES})
        site = settings.SITE_URL
        return robots.Message(
            title=title, lines=lines,
            link_label=_("查看事故"), link_url=site + reverse("incidents:detail", args=[incident.pk]),
            claim_label=_("我来处理"), claim_url=site + reverse("incidents:claim", args=[claim_token(link)]),
            mobiles=sorted(set(mobiles)), urgent=incident.severity == 1 or delivery.escalated)


def backoff_s(attempt):
    return settings.PAGING_RETRY_BASE_S * (2 ** max(0, attempt - 1))


def attempt_delivery(delivery_id, now=None):
    """One attempt: lease the row, POST outside any transaction, log the answer, schedule a retry.

    Returns the DeliveryLog, or None when the delivery is not due (sent, leased by someone else).
    """
    now = now or timezone.now()
    lease = timezone.timedelta(seconds=settings.PAGING_HTTP_TIMEOUT_S + 30)
    leased = (PageDelivery.objects
              .filter(pk=delivery_id, status=PageDelivery.Status.PENDING, next_attempt_at__lte=now)
              .update(next_attempt_at=now + lease))
    if not leased:
        return None
    delivery = PageDelivery.objects.select_related("robot", "incident__room", "incident__incident_type").get(pk=delivery_id)
    robot = delivery.robot
    attempt = delivery.attempts + 1
    if robot is None:
        result = robots.Result(ok=False, http_status=None, response="", error="robot removed", duration_ms=0)
    elif not delivery.incident.is_open:  # closed meanwhile: a late page would only be noise
        result = robots.Result(ok=False, http_status=None, response="", error="incident closed", duration_ms=0)
    else:
        message = _message(delivery, delivery.incident, on_duty(now))
        result = robots.send(robot.platform, robot.webhook_url, robot.secret, message, settings.PAGING_HTTP_TIMEOUT_S)
    done_at = timezone.now()
    with transaction.atomic():
        log = DeliveryLog.objects.create(delivery=delivery, attempt=attempt, at=done_at, ok=result.ok,
                                         http_status=result.http_status, response=result.response[:1000],
                                         error=result.error[:300], duration_ms=result.duration_ms)
        fields = {"attempts": attempt}
        if result.ok:
            fields.update(status=PageDelivery.Status.SENT, sent_at=done_at, next_attempt_at=None)
        elif attempt >= settings.PAGING_MAX_ATTEMPTS or robot is None or not delivery.incident.is_open:
            fields.update(status=PageDelivery.Status.FAILED, next_attempt_at=None)
        else:
            fields.update(next_attempt_at=done_at + timezone.timedelta(seconds=backoff_s(attempt)))
        PageDelivery.objects.filter(pk=delivery.pk).update(**fields)
        if fields.get("status") == PageDelivery.Status.FAILED and delivery.incident.is_open:
            from .services import add_timeline_entry

            with translation.override(settings.LANGUAGE_CODE):  # stored text: the site's language
                text = _("通知「%(robot)s」失败(已尝试 %(n)s 次):%(err)s") % {
                    "robot": robot.name if robot else "—", "n": attempt, "err": result.error}
            add_timeline_entry(incident=delivery.incident, kind=TimelineKind.PAGE, actor_label="paging", text=text,
                               data={"delivery": delivery.pk, "failed": True})
    if not result.ok and "next_attempt_at" in fields and fields["next_attempt_at"] is not None:
        schedule_retry(delivery.pk, backoff_s(attempt))
    return log


def schedule_retry(delivery_id, delay_s):
    """Try again after the backoff (the tick would also find it; this is just sooner)."""
    from .tasks import deliver_task

    if settings.EMBEDDED:
        def run():
            from django.db import close_old_connections

            close_old_connections()
            try:
                deliver_task.apply(args=(delivery_id,))
            finally:
                close_old_connections()

        timer = threading.Timer(delay_s + 0.05, run)
        timer.daemon = True
        timer.start()
    else:
        deliver_task.apply_async(args=(delivery_id,), countdown=delay_s)


def paging_tick(now=None):
    """Due retries, first pages a lost task never sent, and escalations of pages nobody answered.

    Returns {"retried": n, "paged": [incident ids], "escalated": [incident ids]}.
    """
    now = now or timezone.now()
    out = {"retried": 0, "paged": [], "escalated": []}
    for pk in (PageDelivery.objects.filter(status=PageDelivery.Status.PENDING, next_attempt_at__lte=now)
               .values_list("pk", flat=True)[:200]):
        if attempt_delivery(pk, now=now) is not None:
            out["retried"] += 1
    if not PagingRobot.objects.filter(enabled=True).exists():
        return out
    base = Incident.objects.filter(status=Incident.Status.DETECTED, commander__isnull=True, severity__lte=2,
                                   is_drill=False)
    for pk in base.filter(page_round=0, detected_at__lte=now - timezone.timedelta(seconds=60)).values_list("pk", flat=True):
        if page_incident(pk, 1, now=now) is not None:
            out["paged"].append(pk)
    cutoff = now - timezone.timedelta(minutes=settings.PAGING_ACK_MINUTES)
    due = base.filter(page_round__gte=1, page_round__lt=settings.PAGING_MAX_ROUNDS, last_paged_at__lte=cutoff)
    for pk, round_no in due.values_list("pk", "page_round"):
        if page_incident(pk, round_no + 1, now=now) is not None:
            out["escalated"].append(pk)
    return out


_ticker = {"started": False}
_ticker_lock = threading.Lock()


def ensure_local_ticker():
    """Embedded default: no `celery beat`; a daemon thread of the web process runs the tick."""
    if not settings.EMBEDDED:
        return False
    with _ticker_lock:
        if _ticker["started"]:
            return False
        _ticker["started"] = True

    def loop():
        from django.db import close_old_connections

        while True:
            time.sleep(settings.PAGING_TICK_S)
            close_old_connections()
            try:
                paging_tick()
            except Exception:  # noqa: BLE001 - keep ticking; the next round retries
                logger.exception("paging tick failed")
            finally:
                close_old_connections()

    threading.Thread(target=loop, name="paging-ticker", daemon=True).start()
    return True


# --- Reads for the pages ---------------------------------------------------------------------

def recent_deliveries(limit=50):
    return list(PageDelivery.objects.select_related("robot", "incident").prefetch_related("log")
                .order_by("-created_at", "-id")[:limit])


def open_incidents():
    """Open incidents that are not duplicates, most severe and oldest first."""
    return list(Incident.objects.filter(status__in=("detected", "acknowledged", "mitigated"), duplicate_of__isnull=True)
                .select_related("room", "incident_type", "commander", "owner")
                .order_by("severity", "detected_at"))


def merge_candidates(incident):
    return list(Incident.objects.filter(duplicate_of__isnull=True).exclude(pk=incident.pk)
                .filter(Q(status__in=("detected", "acknowledged", "mitigated")) | Q(room=incident.room))
                .select_related("room", "incident_type").order_by("-detected_at")[:30])
