"""Writes for compensation. Each action: one transaction, an audit row, events after commit.

Issuance never trusts the broker. The durable state is in PostgreSQL:
  issue_campaign  -> freezes the audience (Recipient rows), reserves the cost from a locked Budget row,
                     creates IssuanceBatch rows and queues one task per batch;
  run_batch       -> in ONE transaction: locks its batch row (SKIP LOCKED: a copy already running is
                     skipped), inserts the grants (COPY into a temp table, INSERT ... SELECT ... ON
                     CONFLICT DO NOTHING) and marks the batch done. A replay inserts nothing;
  sweep           -> re-queues batches pending longer than COMPENSATION_STUCK_AFTER_S (a killed worker),
                     completes campaigns whose batches are all done, closes draws and red packets.
"""

import base64
import functools
import logging
import secrets
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Sum
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from controlroom import background, deferred
from controlroom.roles import MANAGER, OPS, require_role
from streams.events import send_to_group
from streams.models import ControlAction, Viewer
from streams import services as stream_services
from streams.services import record_action

from . import draws, selectors
from .models import (Budget, Campaign, DrawEntrant, Grant, IssuanceBatch, Recipient, RedPacketShare, Redemption,
                     ShopClient)
from .models import SHOP_URL_VALIDATOR
from .red_packets import RedPacketError, split_red_packet

logger = logging.getLogger("controlroom.compensation")

MAX_BATCH_SIZE = 25_000
MAX_BATCH_ATTEMPTS = 10  # then the campaign fails (after ~10 x COMPENSATION_STUCK_AFTER_S)
MIN_BATCH_SIZE = 1_000
DEFAULT_COUPON_VALIDITY = timedelta(days=7)
DEFAULT_RED_PACKET_WINDOW_S = 600
DEFAULT_RED_PACKET_KEYWORD = "抢红包"  # viewers claim by commenting it (or with the claim button)
WALL_PROGRESS_GROUP = "compensation-wall"


class CompensationError(ValidationError):
    """A refused compensation action; the message is for the operator (already translated)."""


def campaign_group(campaign_id):
    return f"compensation-{campaign_id}"


# --- Helpers ---------------------------------------------------------------------------------


def _audit(actor, action, campaign, *, outcome=ControlAction.Outcome.OK, reason="", detail=None):
    base = {"campaign": campaign.pk, "kind": campaign.kind, "status": campaign.status}
    base.update(detail or {})
    return record_action(actor=actor, action=action, room=campaign.room, target=str(campaign.pk),
                         reason=reason, outcome=outcome, detail=base,
                         actor_label="" if getattr(actor, "is_authenticated", False) else "system")


def _audit_refusal(actor, action, campaign_id, message):
    """Audit a refused action after its transaction rolled back (so the audit row survives)."""
    campaign = Campaign.objects.select_related("room").filter(pk=campaign_id).first()
    if campaign is None:
        return
    try:
        _audit(actor, action, campaign, outcome=ControlAction.Outcome.REFUSED, reason=str(message))
    except Exception:  # noqa: BLE001 - the refusal itself matters more than its audit row
        logger.exception("could not audit refusal of %s", action)


def audited(action):
    """Run a campaign action; a CompensationError is audited as a refusal (outcome=refused) and re-raised."""
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*, actor, campaign_id, **kwargs):
            try:
                return fn(actor=actor, campaign_id=campaign_id, **kwargs)
            except CompensationError as exc:
                _audit_refusal(actor, action, campaign_id, exc.messages[0])
                raise
        return wrapper
    return decorate


def _transition(campaign, status):
    try:
        campaign.transition_to(status)
    except ValidationError as exc:
        raise CompensationError(exc.messages[0]) from None


def _positive_int(value, what, allow_none=False):
    if value is None and allow_none:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise CompensationError(_("%(what)s 必须是整数") % {"what": what}) from None
    if isinstance(value, float) and value != number:
        raise CompensationError(_("%(what)s 必须是整数(单位:分)") % {"what": what})
    if number <= 0:
        raise CompensationError(_("%(what)s 必须大于 0(收到 %(value)s)") % {"what": what, "value": value})
    return number


def new_codes(count):
    """`count` unguessable coupon codes: 80 bits from `secrets`, base32 (16 characters each)."""
    raw = base64.b32encode(secrets.token_bytes(10 * count)).decode("ascii")
    return [raw[i:i + 16] for i in range(0, 16 * count, 16)]


def yuan(fen):
    return f"¥{fen // 100}.{fen % 100:02d}"


def _lock_campaign_for_share(campaign_id):
    """Hold a shared lock on the campaign row: batches, claims and entries run side by side, while
    cancel / finalize (FOR UPDATE) wait for them — so they always see every committed grant."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT status FROM compensation_campaign WHERE id = %s FOR SHARE", [campaign_id])
            row = cursor.fetchone()
        return row[0] if row else None
    return Campaign.objects.filter(pk=campaign_id).values_list("status", flat=True).first()


def _locked(campaign_id):
    return (Campaign.objects.select_for_update(of=("self",)).select_related("room", "budget", "incident")
            .get(pk=campaign_id))


# --- Policy ----------------------------------------------------------------------------------


def visible_downtime_s(incident, now=None):
    """Viewer-visible downtime: what the media side recorded on the incident, else its whole window."""
    recorded = (incident.context or {}).get("viewer_visible_downtime_s")
    if isinstance(recorded, (int, float)) and recorded >= 0:
        return int(recorded)
    start, end = selectors.incident_window(incident, now)
    return int((end - start).total_seconds())


def suggest(*, severity, downtime_s, eligible, per_viewer_cap_fen):
    """Suggest a kind and amount from severity (1 = worst) and viewer-visible downtime.

    Playbook: a short glitch (< 60 s, SEV3/4) -> red packet to revive the room; a noticeable
    interruption -> no-threshold coupon of ¥3 + ¥1 per started minute (max ¥20); SEV1 or > 15 min
    -> exclusive lucky bag (¥50 prizes for 1 in 20 viewers) on top of what the room usually gives.
    Amounts never exceed the budget's per-viewer cap.
    """
    eligible = max(int(eligible), 0)
    minutes = max(1, -(-int(downtime_s) // 60))
    if severity <= 1 or downtime_s >= 900:
        prize = min(5000, per_viewer_cap_fen)
        return {"kind": Campaign.Kind.LUCKY_BAG, "amount_fen": prize,
                "winner_count": max(1, eligible // 20), "countdown_s": 180,
                "reason": _("严重事故或长时间中断:专属福袋")}
    if downtime_s < 60 and severity >= 3:
        per_head = min(88, per_viewer_cap_fen)
        count = max(1, eligible)
        return {"kind": Campaign.Kind.RED_PACKET, "amount_fen": per_head * count, "share_count": count,
                "share_cap_fen": min(per_viewer_cap_fen, per_head * 3), "countdown_s": DEFAULT_RED_PACKET_WINDOW_S,
                "reason": _("短暂卡顿:红包活跃气氛")}
    amount = min(2000, 300 + 100 * minutes, per_viewer_cap_fen)
    return {"kind": Campaign.Kind.COUPON, "amount_fen": amount, "reason": _("直播中断:无门槛优惠券")}


# --- Imported audience ------------------------------------------------------------------------

MAX_IMPORT_ROWS = 200_000
MAX_IMPORT_INTERVAL = timedelta(hours=24)


def import_audience(*, actor, room, rows, source="upload"):
    """Record the platform's own audience of `room`: rows of (platform user id, joined_at, left_at).

    The platform owns the audience, so this is the trustworthy route: each user becomes an identified
    Viewer of the room's merchant and each interval a ViewerSession, which the audience SQL then counts
    like any other. Re-importing the same interval adds nothing. Returns (sessions added, viewers).
    """
    from streams.viewer_identity import PLATFORM_USER_ID_RE, identified_viewers
    from streams.models import ViewerSession

    rows = list(rows)
    if not rows:
        raise CompensationError(_("导入的观众名单为空"))
    if len(rows) > MAX_IMPORT_ROWS:
        raise CompensationError(_("一次最多导入 %(n)s 行") % {"n": MAX_IMPORT_ROWS})
    latest = timezone.now() + timedelta(minutes=1)
    cleaned = []
    for number, (uid, joined_at, left_at) in enumerate(rows, start=1):
        uid = (uid or "").strip()
        if not PLATFORM_USER_ID_RE.match(uid):
            raise CompensationError(_("第 %(n)s 行:平台用户 ID 只能包含字母、数字、- 和 _(最多 64 个字符)")
                                    % {"n": number})
        if joined_at is None or left_at is None or timezone.is_naive(joined_at) or timezone.is_naive(left_at):
            raise CompensationError(_("第 %(n)s 行:需要带时区的进入和离开时间") % {"n": number})
        if not (joined_at < left_at <= latest) or left_at - joined_at > MAX_IMPORT_INTERVAL:
            raise CompensationError(_("第 %(n)s 行:观看区间不合理(离开须晚于进入、不晚于现在、不超过 24 小时)")
                                    % {"n": number})
        cleaned.append((uid, joined_at, left_at))
    with transaction.atomic():
        viewers = identified_viewers(room.merchant, (r[0] for r in cleaned))
        existing = set(ViewerSession.objects.filter(room=room, viewer_id__in=viewers.values())
                       .values_list("viewer_id", "joined_at", "left_at"))
        new_rows, seen = [], set()
        for uid, joined_at, left_at in cleaned:
            key = (viewers[uid], joined_at, left_at)
            if key in existing or key in seen:
                continue
            seen.add(key)
            new_rows.append(ViewerSession(room=room, viewer_id=viewers[uid], joined_at=joined_at,
                                          last_seen_at=left_at, left_at=left_at))
        ViewerSession.objects.bulk_create(new_rows, batch_size=5000)
        record_action(actor=actor if getattr(actor, "is_authenticated", False) else None,
                      actor_label="" if getattr(actor, "is_authenticated", False) else str(actor or "platform")[:64],
                      action="import_audience", room=room, target=room.slug,
                      detail={"rows": len(cleaned), "added": len(new_rows), "viewers": len(viewers),
                              "source": source})
    return len(new_rows), len(viewers)


# --- Create / approve / cancel / revoke ---------------------------------------------------------


def create_campaign(*, actor, room, budget, kind, title="", amount_fen, incident=None, share_count=None,
                    share_cap_fen=None, winner_count=None, keyword="", countdown_s=0, min_overlap_s=60,
                    window_start=None, window_end=None, valid_from=None, valid_until=None, include_anonymous=False,
                    shop_url=""):
    """Create a draft with its audience preview (eligible count and cost)."""
    require_role(actor, OPS, MANAGER, what="create_campaign")
    if kind not in Campaign.Kind.values:
        raise CompensationError(_("未知的活动类型:%(kind)s") % {"kind": kind})
    shop_url = _shop_url(shop_url)
    amount_fen = _positive_int(amount_fen, _("金额"))
    min_overlap_s = int(min_overlap_s or 0)
    if min_overlap_s < 0:
        raise CompensationError(_("最短在场时间不能为负数"))
    min_overlap_s = max(min_overlap_s, settings.COMPENSATION_MIN_WATCH_S)  # the floor applies to every campaign
    include_anonymous = bool(include_anonymous)
    countdown_s = int(countdown_s or 0)
    if countdown_s < 0:
        raise CompensationError(_("倒计时不能为负数"))
    if incident is not None:
        if incident.room_id != room.pk:
            raise CompensationError(_("事故不属于该直播间"))
        window_start, window_end = selectors.incident_window(incident)
    if window_start is None or window_end is None:
        raise CompensationError(_("请提供补偿窗口(或关联一个事故)"))
    if window_end < window_start:
        raise CompensationError(_("窗口结束时间早于开始时间"))
    if budget.room_id and budget.room_id != room.pk:
        raise CompensationError(_("该预算不能用于这个直播间"))

    now = timezone.now()
    if kind == Campaign.Kind.COUPON:
        valid_from = valid_from or now
        valid_until = valid_until or valid_from + DEFAULT_COUPON_VALIDITY
        if valid_until <= valid_from:
            raise CompensationError(_("优惠券失效时间必须晚于生效时间"))
        if valid_until <= now:
            raise CompensationError(_("优惠券失效时间已过"))
    else:
        valid_from = valid_until = None
    if kind == Campaign.Kind.RED_PACKET:
        share_count = _positive_int(share_count, _("红包份数"))
        share_cap_fen = _positive_int(share_cap_fen, _("单份上限"), allow_none=True) or min(
            amount_fen, budget.per_viewer_cap_fen)
        if amount_fen < share_count:
            raise CompensationError(_("红包总额 %(total)s 不够分成 %(n)s 份(每份至少 1 分)")
                                    % {"total": yuan(amount_fen), "n": share_count})
        if amount_fen > share_count * share_cap_fen:
            raise CompensationError(_("红包总额 %(total)s 超过 %(n)s 份 × 单份上限 %(cap)s")
                                    % {"total": yuan(amount_fen), "n": share_count, "cap": yuan(share_cap_fen)})
        countdown_s = countdown_s or DEFAULT_RED_PACKET_WINDOW_S
        keyword = (keyword or "").strip() or DEFAULT_RED_PACKET_KEYWORD
    else:
        share_count = share_cap_fen = None
    if kind in Campaign.DRAW_KINDS:
        winner_count = _positive_int(winner_count, _("中奖人数"))
        if kind == Campaign.Kind.LUCKY_BAG and countdown_s < 10:
            raise CompensationError(_("专属福袋的参与倒计时至少 10 秒"))
    else:
        winner_count = None
    per_viewer = share_cap_fen if kind == Campaign.Kind.RED_PACKET else amount_fen
    if per_viewer > budget.per_viewer_cap_fen:
        raise CompensationError(_("每位观众最多 %(cap)s,本活动单人可得 %(amount)s")
                                % {"cap": yuan(budget.per_viewer_cap_fen), "amount": yuan(per_viewer)})

    eligible = selectors.eligible_count(room.pk, window_start, window_end, min_overlap_s, include_anonymous)
    cost = selectors.cost_for(kind, amount_fen, eligible, winner_count)
    if cost > budget.available_fen:
        raise CompensationError(_("预算不足:预计成本 %(cost)s,可用 %(available)s")
                                % {"cost": yuan(cost), "available": yuan(budget.available_fen)})
    with transaction.atomic():
        campaign = Campaign.objects.create(
            room=room, incident=incident, budget=budget, kind=kind,
            title=(title or "").strip()[:120] or Campaign.Kind(kind).label, amount_fen=amount_fen,
            share_count=share_count, share_cap_fen=share_cap_fen, winner_count=winner_count,
            keyword=(keyword or "").strip()[:40], countdown_s=countdown_s, min_overlap_s=min_overlap_s,
            window_start=window_start, window_end=window_end, valid_from=valid_from, valid_until=valid_until,
            include_anonymous=include_anonymous, eligible_count=eligible, cost_fen=cost, created_by=actor,
            shop_url=shop_url,
        )
        _audit(actor, "create_campaign", campaign, detail={"eligible": eligible, "cost_fen": cost,
                                                           "amount_fen": amount_fen,
                                                           "include_anonymous": include_anonymous})
    return campaign


def _shop_url(value):
    value = (value or "").strip()
    if value:
        try:
            SHOP_URL_VALIDATOR(value)
        except ValidationError as exc:
            raise CompensationError(exc.messages[0]) from None
        if len(value) > 500:
            raise CompensationError(_("链接太长(最多 500 个字符)"))
    return value


def needs_approval(campaign):
    return campaign.cost_fen > campaign.budget.threshold_fen


@audited("approve_campaign")
def approve_campaign(*, actor, campaign_id):
    """A manager approves; the two-person rule: never the person who created it."""
    require_role(actor, MANAGER, what="approve_campaign")
    with transaction.atomic():
        campaign = _locked(campaign_id)
        if campaign.created_by_id == actor.pk:
            raise CompensationError(_("双人复核:审批人不能是活动创建人"))
        _transition(campaign, Campaign.Status.APPROVED)
        campaign.approved_by, campaign.approved_at = actor, timezone.now()
        campaign.save(update_fields=["status", "approved_by", "approved_at"])
        _audit(actor, "approve_campaign", campaign, detail={"cost_fen": campaign.cost_fen})
        _push_on_commit(campaign.pk)
    return campaign


@audited("cancel_campaign")
def cancel_campaign(*, actor, campaign_id, reason=""):
    """Stop a campaign; whatever was not issued goes back to the budget (issued grants stay)."""
    require_role(actor, OPS, MANAGER, what="cancel_campaign")
    with transaction.atomic():
        campaign = _locked(campaign_id)  # waits for running batches (they hold FOR SHARE)
        _transition(campaign, Campaign.Status.CANCELLED)
        _settle(campaign)
        campaign.save()
        _audit(actor, "cancel_campaign", campaign, reason=reason,
               detail={"issued": campaign.issued_count, "issued_fen": campaign.issued_fen})
        _timeline_on_commit(campaign)
        _push_on_commit(campaign.pk)
    return campaign


@audited("revoke_campaign")
def revoke_campaign(*, actor, campaign_id, reason=""):
    """Void every unredeemed grant of a finished campaign; their amount returns to the budget."""
    require_role(actor, MANAGER, what="revoke_campaign")
    with transaction.atomic():
        campaign = _locked(campaign_id)
        if campaign.status == Campaign.Status.ISSUING:
            raise CompensationError(_("活动仍在发放中,请先取消"))
        if campaign.revoked_at:
            return campaign
        # Redemptions lock the grant and check revoked_at under the campaign's shared lock.
        unredeemed = Grant.objects.filter(campaign=campaign, redeemed_at__isnull=True).aggregate(
            n=Sum("amount_fen"))["n"] or 0
        budget = Budget.objects.select_for_update().get(pk=campaign.budget_id)
        released = min(unredeemed, campaign.reserved_fen)
        budget.reserved_fen = F("reserved_fen") - released
        budget.save(update_fields=["reserved_fen"])
        campaign.reserved_fen -= released
        campaign.revoked_at = timezone.now()
        campaign.save(update_fields=["reserved_fen", "revoked_at"])
        _audit(actor, "revoke_campaign", campaign, reason=reason, detail={"released_fen": released})
        _push_on_commit(campaign.pk)
    return campaign


# --- Issue --------------------------------------------------------------------------------------


def _freeze_audience(campaign):
    """INSERT the eligible viewers into Recipient (positions 1..N) in one SQL statement."""
    qs = selectors.audience(campaign.room_id, campaign.window_start, campaign.window_end, campaign.min_overlap_s,
                            campaign.include_anonymous)
    sql, params = qs.query.get_compiler(connection=connection).as_sql()
    if connection.vendor == "postgresql":
        seconds = "GREATEST(0, EXTRACT(EPOCH FROM a.overlap))::integer"
    else:
        seconds = "MAX(0, CAST(a.overlap / 1000000 AS INTEGER))"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A million sessions: keep the per-viewer aggregate and the sort in memory (this transaction only).
            cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute(
            "INSERT INTO compensation_recipient (campaign_id, position, viewer_id, overlap_s) "
            f"SELECT %s, ROW_NUMBER() OVER (ORDER BY a.viewer_id), a.viewer_id, {seconds} FROM ({sql}) a",
            [campaign.pk, *params],
        )
        return cursor.rowcount


def _batch_size_for(eligible):
    return max(MIN_BATCH_SIZE, min(MAX_BATCH_SIZE, -(-eligible // 16)))


@audited("issue_campaign")
def issue_campaign(*, actor, campaign_id, batch_size=None):
    """Freeze the audience, reserve the cost from the budget and start issuing (in the background)."""
    require_role(actor, OPS, MANAGER, what="issue_campaign")
    with transaction.atomic():
        campaign = _locked(campaign_id)
        if campaign.status == Campaign.Status.DRAFT:
            if needs_approval(campaign):
                raise CompensationError(
                        _("成本 %(cost)s 超过 %(limit)s,需要经理审批(且不能是创建人)")
                        % {"cost": yuan(campaign.cost_fen), "limit": yuan(campaign.budget.threshold_fen)})
            _transition(campaign, Campaign.Status.APPROVED)  # below the threshold: no second person needed
        _transition(campaign, Campaign.Status.ISSUING)

        eligible = _freeze_audience(campaign)
        cost = selectors.cost_for(campaign.kind, campaign.amount_fen, eligible, campaign.winner_count)
        if eligible == 0:
            raise CompensationError(_("补偿窗口内没有符合条件的观众"))
        if campaign.approved_by_id and cost > campaign.cost_fen:
            raise CompensationError(
                    _("受众增加,成本 %(cost)s 超过审批金额 %(approved)s,请重新审批")
                    % {"cost": yuan(cost), "approved": yuan(campaign.cost_fen)})
        if not campaign.approved_by_id and cost > campaign.budget.threshold_fen:
            raise CompensationError(_("成本 %(cost)s 超过审批线,需要经理审批")
                    % {"cost": yuan(cost)})

        # The budget row lock serialises every reservation on this budget: no overspend.
        budget = Budget.objects.select_for_update().get(pk=campaign.budget_id)
        if cost > budget.total_fen - budget.reserved_fen:
            raise CompensationError(_("预算不足:需要 %(cost)s,可用 %(available)s")
                    % {"cost": yuan(cost), "available": yuan(budget.total_fen - budget.reserved_fen)})
        budget.reserved_fen += cost
        budget.save(update_fields=["reserved_fen"])

        now = timezone.now()
        campaign.eligible_count, campaign.cost_fen, campaign.reserved_fen = eligible, cost, cost
        campaign.started_at = now
        if campaign.kind == Campaign.Kind.COUPON:
            _plan_batches(campaign, eligible, batch_size)
        elif campaign.kind == Campaign.Kind.RED_PACKET:
            _generate_shares(campaign)
            campaign.closes_at = now + timedelta(seconds=campaign.countdown_s or DEFAULT_RED_PACKET_WINDOW_S)
        else:
            _open_draw(campaign, now)
        campaign.save()
        if campaign.kind != Campaign.Kind.COUPON:
            stream_services.refresh_viewer_panels(room=campaign.room)  # viewers see the new offer
        if campaign.kind in (Campaign.Kind.RED_PACKET, Campaign.Kind.LUCKY_BAG):
            _offer_on_commit(campaign)
        _audit(actor, "issue_campaign", campaign, detail={"eligible": eligible, "reserved_fen": cost,
                                                          "batch_size": campaign.batch_size})
        _push_on_commit(campaign.pk)
        transaction.on_commit(ensure_local_sweeper)
    return campaign


def _offer_on_commit(campaign):
    """Put the new offer's card on the open viewer pages of the viewers it is for, right after commit (the
    panels' own reload is spread over seconds so a full room does not hit the server at once)."""
    campaign_id = campaign.pk

    def push():
        c = Campaign.objects.select_related("room").get(pk=campaign_id)
        with translation.override(settings.LANGUAGE_CODE):  # pushed to every viewer: the site language
            html = render_to_string("compensation/viewer_offers.html#offer", {"offer": {"campaign": c, "done": False}})
        viewer_ids = Recipient.objects.filter(campaign_id=campaign_id).values_list("viewer_id", flat=True)
        stream_services.deliver_to_viewers(room=c.room, viewer_ids=viewer_ids, html=html, key=f"offer-{campaign_id}")

    transaction.on_commit(push)


def _plan_batches(campaign, eligible, batch_size):
    from . import tasks

    size = batch_size or _batch_size_for(eligible)
    campaign.batch_size = size
    now = timezone.now()
    batches = IssuanceBatch.objects.bulk_create([
        IssuanceBatch(campaign=campaign, number=n, first_position=first, enqueued_at=now, attempts=1,
                      last_position=min(first + size - 1, eligible))
        for n, first in enumerate(range(1, eligible + 1, size), start=1)
    ])
    ids = list(IssuanceBatch.objects.filter(campaign=campaign).order_by("number").values_list("pk", flat=True))
    assert len(ids) == len(batches)
    for batch_id in ids:
        background.enqueue(tasks.issue_batch, batch_id)


def _generate_shares(campaign):
    try:
        amounts = split_red_packet(campaign.amount_fen, campaign.share_count, campaign.share_cap_fen)
    except RedPacketError as exc:
        raise CompensationError(str(exc)) from None
    RedPacketShare.objects.bulk_create(
        [RedPacketShare(campaign=campaign, index=i, amount_fen=a) for i, a in enumerate(amounts, start=1)],
        batch_size=5000)


def _open_draw(campaign, now):
    from . import tasks

    campaign.seed = draws.new_seed()
    campaign.seed_hash = draws.seed_hash(campaign.seed)
    campaign.closes_at = now + timedelta(seconds=campaign.countdown_s)
    if campaign.kind == Campaign.Kind.LOTTERY:
        # Everyone in the audience takes part in a lottery.
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO compensation_drawentrant (campaign_id, viewer_id, via, entered_at) "
                "SELECT campaign_id, viewer_id, %s, %s FROM compensation_recipient WHERE campaign_id = %s",
                [DrawEntrant.Via.AUDIENCE, now, campaign.pk])
    if campaign.countdown_s == 0:
        background.enqueue(tasks.close_draw, campaign.pk)


# --- Batches ------------------------------------------------------------------------------------


_STAGE_SQL = ("CREATE TEMP TABLE IF NOT EXISTS compensation_grant_stage "
              "(viewer_id bigint NOT NULL, code varchar(24) NOT NULL) ON COMMIT DELETE ROWS")


def _insert_grants(campaign, viewer_ids, amount_fen):
    """Insert one grant per viewer, idempotently; returns how many rows were actually inserted."""
    if not viewer_ids:
        return 0
    codes = new_codes(len(viewer_ids))
    if connection.vendor == "postgresql":
        # Fast path: COPY into a temp table, then one INSERT ... SELECT ... ON CONFLICT DO NOTHING.
        with connection.cursor() as cursor:
            cursor.execute(_STAGE_SQL)
            payload = "".join(f"{v}\t{c}\n" for v, c in zip(viewer_ids, codes))
            with cursor.cursor.copy("COPY compensation_grant_stage (viewer_id, code) FROM STDIN") as copy:
                copy.write(payload)
            cursor.execute(
                "INSERT INTO compensation_grant (code, campaign_id, viewer_id, amount_fen, issued_at, redeemed_order) "
                "SELECT code, %s, viewer_id, %s, now(), '' FROM compensation_grant_stage ON CONFLICT DO NOTHING",
                [campaign.pk, amount_fen])
            inserted = cursor.rowcount
            cursor.execute("TRUNCATE compensation_grant_stage")
        return inserted
    before = Grant.objects.filter(campaign=campaign).count()
    Grant.objects.bulk_create(
        [Grant(code=c, campaign_id=campaign.pk, viewer_id=v, amount_fen=amount_fen) for v, c in zip(viewer_ids, codes)],
        ignore_conflicts=True, batch_size=500)
    return Grant.objects.filter(campaign=campaign).count() - before


def _viewers_without_grant(campaign_id, first, last):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.viewer_id FROM compensation_recipient r WHERE r.campaign_id = %s AND r.position BETWEEN %s AND %s "
            "AND NOT EXISTS (SELECT 1 FROM compensation_grant g WHERE g.campaign_id = r.campaign_id "
            "AND g.viewer_id = r.viewer_id)", [campaign_id, first, last])
        return [row[0] for row in cursor.fetchall()]


def run_batch(batch_id):
    """Issue one batch. Returns rows inserted (0 on a replay), or None if there was nothing to do."""
    with transaction.atomic():
        # of=self and no ordering: lock the batch row only (a join would lock the campaign row too,
        # and SKIP LOCKED would then skip every batch while another batch holds its shared lock).
        batch = (IssuanceBatch.objects.select_for_update(skip_locked=True, of=("self",))
                 .filter(pk=batch_id, status=IssuanceBatch.Status.PENDING).order_by().first())
        if batch is None:
            logger.info("batch %s: already done or being issued by another worker; nothing to do", batch_id)
            return None
        status = _lock_campaign_for_share(batch.campaign_id)
        if status != Campaign.Status.ISSUING:
            logger.info("batch %s: campaign %s is %s; nothing to do", batch_id, batch.campaign_id, status)
            return None
        campaign = Campaign.objects.only("pk", "amount_fen").get(pk=batch.campaign_id)
        with connection.cursor() as cursor:
            cursor.execute("SELECT viewer_id FROM compensation_recipient WHERE campaign_id = %s "
                           "AND position BETWEEN %s AND %s", [campaign.pk, batch.first_position, batch.last_position])
            viewer_ids = [row[0] for row in cursor.fetchall()]
        inserted = _insert_grants(campaign, viewer_ids, campaign.amount_fen)
        if inserted < len(viewer_ids):
            # Either a replay (the grants exist) or, astronomically rarely, a code collision: retry those.
            for _attempt in range(5):
                missing = _viewers_without_grant(campaign.pk, batch.first_position, batch.last_position)
                if not missing:
                    break
                inserted += _insert_grants(campaign, missing, campaign.amount_fen)
            else:
                raise RuntimeError(f"batch {batch_id}: could not insert grants for {len(missing)} viewers")
        batch.status = IssuanceBatch.Status.DONE
        batch.granted_count = len(viewer_ids)
        batch.done_at = timezone.now()
        batch.save(update_fields=["status", "granted_count", "done_at"])
        campaign_id = campaign.pk
        transaction.on_commit(lambda: push_progress(campaign_id))
    finalize_if_complete(campaign_id)
    return inserted


def finalize_if_complete(campaign_id):
    """Complete a coupon campaign once every batch is done (idempotent; any worker may call it)."""
    if IssuanceBatch.objects.filter(campaign_id=campaign_id, status=IssuanceBatch.Status.PENDING).exists():
        return None
    with transaction.atomic():
        campaign = _locked(campaign_id)
        if campaign.status != Campaign.Status.ISSUING or campaign.kind != Campaign.Kind.COUPON:
            return campaign
        if IssuanceBatch.objects.filter(campaign_id=campaign_id, status=IssuanceBatch.Status.PENDING).exists():
            return campaign
        return _complete(campaign)


def _settle(campaign):
    """Count what was really issued and give the unused reservation back to the budget."""
    if campaign.kind == Campaign.Kind.COUPON:
        issued = Grant.objects.filter(campaign=campaign).count()
        issued_fen = issued * campaign.amount_fen
    else:
        row = Grant.objects.filter(campaign=campaign).aggregate(n=Sum("amount_fen"))
        issued = Grant.objects.filter(campaign=campaign).count()
        issued_fen = row["n"] or 0
    if issued_fen > campaign.reserved_fen:
        # Cannot happen (the audience is frozen and priced before reserving); fail loudly, not silently.
        raise RuntimeError(f"campaign {campaign.pk} issued {issued_fen} fen over its reservation "
                           f"{campaign.reserved_fen}")
    release = campaign.reserved_fen - issued_fen
    if release:
        budget = Budget.objects.select_for_update().get(pk=campaign.budget_id)
        budget.reserved_fen = F("reserved_fen") - release
        budget.save(update_fields=["reserved_fen"])
    campaign.reserved_fen = issued_fen
    campaign.issued_count, campaign.issued_fen = issued, issued_fen
    campaign.finished_at = timezone.now()


def _complete(campaign):
    campaign.transition_to(Campaign.Status.COMPLETED)
    _settle(campaign)
    campaign.save()
    if campaign.kind != Campaign.Kind.COUPON:
        stream_services.refresh_viewer_panels(room=campaign.room)  # the offer closed
    _audit(None, "complete_campaign", campaign,
           detail={"issued": campaign.issued_count, "issued_fen": campaign.issued_fen,
                   "eligible": campaign.eligible_count})
    _timeline_on_commit(campaign)
    _push_on_commit(campaign.pk)
    campaign_id = campaign.pk

    def notify():
        from . import tasks
        background.enqueue(tasks.notify_recipients, campaign_id)

    transaction.on_commit(notify)
    return campaign


def fail_campaign(*, campaign_id, reason):
    with transaction.atomic():
        campaign = _locked(campaign_id)
        if campaign.status != Campaign.Status.ISSUING:
            return campaign
        campaign.transition_to(Campaign.Status.FAILED)
        campaign.failure_reason = str(reason)[:300]
        _settle(campaign)
        campaign.save()
        _audit(None, "fail_campaign", campaign, outcome=ControlAction.Outcome.FAILED, reason=campaign.failure_reason)
        _timeline_on_commit(campaign)
        _push_on_commit(campaign.pk)
    return campaign


# --- Red packets --------------------------------------------------------------------------------


def claim_red_packet(*, campaign_id, viewer):
    """A viewer grabs one share: atomic (FOR UPDATE SKIP LOCKED), at most one per viewer."""
    if viewer is None or not Viewer.objects.filter(pk=getattr(viewer, "pk", None)).exists():
        raise CompensationError(_("未知的观众"))
    existing = Grant.objects.filter(campaign_id=campaign_id, viewer=viewer).first()
    if existing:
        return existing
    try:
        with transaction.atomic():
            status = _lock_campaign_for_share(campaign_id)
            campaign = Campaign.objects.filter(pk=campaign_id).first()
            if campaign is None or campaign.kind != Campaign.Kind.RED_PACKET:
                raise CompensationError(_("没有这个红包"))
            if status != Campaign.Status.ISSUING or (campaign.closes_at and campaign.closes_at <= timezone.now()):
                raise CompensationError(_("红包已结束"))
            if not Recipient.objects.filter(campaign_id=campaign_id, viewer=viewer).exists():
                raise CompensationError(_("这个红包只发给事故期间在场的观众"))
            share = (RedPacketShare.objects.select_for_update(skip_locked=True, of=("self",))
                     .filter(campaign_id=campaign_id, viewer__isnull=True).order_by("index").first())
            if share is None:
                raise CompensationError(_("红包已被抢完"))
            share.viewer, share.claimed_at = viewer, timezone.now()
            share.save(update_fields=["viewer", "claimed_at"])
            grant = Grant.objects.create(code=new_codes(1)[0], campaign_id=campaign_id, viewer=viewer,
                                         amount_fen=share.amount_fen, issued_at=share.claimed_at)
            transaction.on_commit(lambda: push_progress(campaign_id, final=False))
    except IntegrityError:
        # The same viewer claiming twice at once: the unique constraint let one through.
        return Grant.objects.get(campaign_id=campaign_id, viewer=viewer)
    if not RedPacketShare.objects.filter(campaign_id=campaign_id, viewer__isnull=True).exists():
        close_red_packet(campaign_id)
    return grant


def close_red_packet(campaign_id):
    with transaction.atomic():
        campaign = _locked(campaign_id)
        if campaign.status != Campaign.Status.ISSUING or campaign.kind != Campaign.Kind.RED_PACKET:
            return campaign
        return _complete(campaign)


# --- Draws --------------------------------------------------------------------------------------


def enter_draw(*, campaign_id, viewer, via=DrawEntrant.Via.BUTTON):
    """Join a lucky bag during its countdown (idempotent). Only viewers affected by the outage may."""
    if viewer is None or not Viewer.objects.filter(pk=getattr(viewer, "pk", None)).exists():
        raise CompensationError(_("未知的观众"))
    with transaction.atomic():
        status = _lock_campaign_for_share(campaign_id)
        campaign = Campaign.objects.filter(pk=campaign_id).first()
        if campaign is None or campaign.kind != Campaign.Kind.LUCKY_BAG:
            raise CompensationError(_("没有这个福袋"))
        if status != Campaign.Status.ISSUING or campaign.draw_closed_at or (
                campaign.closes_at and campaign.closes_at <= timezone.now()):
            raise CompensationError(_("福袋参与已截止"))
        if not Recipient.objects.filter(campaign_id=campaign_id, viewer=viewer).exists():
            raise CompensationError(_("专属福袋只对事故期间在场的观众开放"))
        entrant, created = DrawEntrant.objects.get_or_create(campaign_id=campaign_id, viewer=viewer,
                                                             defaults={"via": via})
        if created:
            transaction.on_commit(lambda: push_progress(campaign_id, final=False))
    return entrant


def act_on_comment(*, room, viewer, text):
    """A viewer's comment with an open campaign's keyword: join the lucky bag / grab a red packet share.

    Returns what happened (entries and grants); refusals (not eligible, all claimed) are not errors here.
    """
    results = enter_by_comment(room=room, viewer=viewer, text=text)
    for campaign in Campaign.objects.filter(room=room, kind=Campaign.Kind.RED_PACKET,
                                            status=Campaign.Status.ISSUING).exclude(keyword=""):
        if campaign.keyword not in (text or ""):
            continue
        try:
            grant = claim_red_packet(campaign_id=campaign.pk, viewer=viewer)
        except CompensationError:
            continue
        results.append(grant)
        _tell_viewer(room, viewer, notice_text(grant), key=notice_key(grant.campaign))
    return results


def _tell_viewer(room, viewer, text, key=""):
    stream_services.notify_viewers(room=room, viewer_ids=[viewer.pk], text=text, key=key)


def enter_by_comment(*, room, viewer, text):
    """A viewer's comment containing an open lucky bag's keyword enters them; returns the entries."""
    entries = []
    text = text or ""
    for campaign in Campaign.objects.filter(room=room, kind=Campaign.Kind.LUCKY_BAG, status=Campaign.Status.ISSUING,
                                            draw_closed_at__isnull=True).exclude(keyword=""):
        if campaign.keyword in text:
            try:
                entries.append(enter_draw(campaign_id=campaign.pk, viewer=viewer, via=DrawEntrant.Via.COMMENT))
            except CompensationError:
                pass  # not eligible / closed: a comment is not an error
    return entries


def close_draw(campaign_id, actor=None):
    """Freeze the entrants, publish their hash, draw the winners, grant prizes, reveal the seed."""
    with transaction.atomic():
        campaign = _locked(campaign_id)  # waits for entries in flight (they hold FOR SHARE)
        if campaign.status != Campaign.Status.ISSUING or not campaign.is_draw:
            return campaign
        now = timezone.now()
        entrant_ids = list(DrawEntrant.objects.filter(campaign=campaign).values_list("viewer_id", flat=True))
        campaign.entrants_hash = draws.entrants_digest(entrant_ids)
        campaign.entrants_count = len(entrant_ids)
        campaign.draw_closed_at = now
        campaign.winners = draws.draw_winners(campaign.seed, entrant_ids, campaign.winner_count)
        _insert_grants(campaign, campaign.winners, campaign.amount_fen)
        campaign.seed_revealed_at = timezone.now()
        _complete(campaign)
        _audit(actor, "draw_campaign", campaign,
               detail={"entrants": len(entrant_ids), "winners": len(campaign.winners),
                       "entrants_hash": campaign.entrants_hash, "seed_hash": campaign.seed_hash})
    return campaign


def close_draw_now(*, actor, campaign_id):
    require_role(actor, OPS, MANAGER, what="draw_campaign")
    campaign = Campaign.objects.get(pk=campaign_id)
    if campaign.status != Campaign.Status.ISSUING or not campaign.is_draw:
        raise CompensationError(_("该活动当前不能开奖"))
    return close_draw(campaign_id, actor=actor)


def draw_verification(campaign):
    if not campaign.seed_revealed_at:
        return None
    entrant_ids = list(DrawEntrant.objects.filter(campaign=campaign).values_list("viewer_id", flat=True))
    return draws.verify(seed=campaign.seed, published_seed_hash=campaign.seed_hash, entrant_ids=entrant_ids,
                        published_entrants_hash=campaign.entrants_hash, k=campaign.winner_count or 0,
                        published_winners=campaign.winners)


# --- Sweeper ------------------------------------------------------------------------------------


def sweep(now=None):
    """Recover from lost tasks and close what is due. Safe to run anywhere, any number of times."""
    from . import tasks

    now = now or timezone.now()
    stuck_before = now - timedelta(seconds=settings.COMPENSATION_STUCK_AFTER_S)
    requeued, failing = [], set()
    with transaction.atomic():
        # SKIP LOCKED: a batch being issued right now holds its row lock and is left alone.
        issuing = Campaign.objects.filter(status=Campaign.Status.ISSUING, kind=Campaign.Kind.COUPON)
        stuck = list(IssuanceBatch.objects.select_for_update(skip_locked=True, of=("self",))
                     .filter(status=IssuanceBatch.Status.PENDING, enqueued_at__lt=stuck_before,
                             campaign_id__in=list(issuing.values_list("pk", flat=True)))
                     .order_by("campaign_id", "number")[:500])
        for batch in stuck:
            if batch.attempts >= MAX_BATCH_ATTEMPTS:
                failing.add(batch.campaign_id)
                continue
            batch.enqueued_at, batch.attempts = now, batch.attempts + 1
            batch.save(update_fields=["enqueued_at", "attempts"])
            background.enqueue(tasks.issue_batch, batch.pk)
            requeued.append(batch.pk)
    if requeued:
        logger.warning("compensation sweeper re-queued %d stuck batches: %s", len(requeued), requeued[:20])
    for campaign_id in failing:
        # A batch that keeps failing is a bug or a broken database, not bad luck: stop and say so.
        fail_campaign(campaign_id=campaign_id,
                      reason=_("批次重试 %(n)s 次仍未完成,已停止发放(已发放的保留,未用预算已释放)")
                      % {"n": MAX_BATCH_ATTEMPTS})
    for campaign_id in Campaign.objects.filter(status=Campaign.Status.ISSUING, kind=Campaign.Kind.COUPON) \
            .exclude(batches__status=IssuanceBatch.Status.PENDING).values_list("pk", flat=True):
        finalize_if_complete(campaign_id)
    for campaign in Campaign.objects.filter(status=Campaign.Status.ISSUING, closes_at__lte=now,
                                            kind__in=Campaign.DRAW_KINDS):
        close_draw(campaign.pk)
    for campaign in Campaign.objects.filter(status=Campaign.Status.ISSUING, closes_at__lte=now,
                                            kind=Campaign.Kind.RED_PACKET):
        close_red_packet(campaign.pk)
    return requeued


_sweeper_started = False
_sweeper_lock = threading.Lock()


def start_sweeper_thread(interval_s=None):
    """Run `sweep` every few seconds in a daemon thread of this process (worker or embedded server)."""
    global _sweeper_started
    with _sweeper_lock:
        if _sweeper_started:
            return False
        _sweeper_started = True
    interval = interval_s or settings.COMPENSATION_SWEEP_INTERVAL_S

    def loop():
        from django.db import close_old_connections

        while True:
            time.sleep(interval)
            close_old_connections()
            try:
                sweep()
            except Exception:  # noqa: BLE001 - keep sweeping; the next round retries
                logger.exception("compensation sweep failed")
            finally:
                close_old_connections()

    threading.Thread(target=loop, name="compensation-sweeper", daemon=True).start()
    return True


def ensure_local_sweeper():
    """On the embedded default there is no worker process: sweep inside the web process."""
    if settings.EMBEDDED:
        start_sweeper_thread()


# --- Events -------------------------------------------------------------------------------------

_last_push = {}


def render_progress(campaign):
    progress = selectors.campaign_progress(campaign)
    ctx = {"campaign": campaign, "progress": progress}
    return (render_to_string("compensation/campaign_detail.html#progress", ctx),
            render_to_string("compensation/campaign_detail.html#progress_compact", ctx))


def push_progress(campaign_id, final=None):
    """Render the progress bar once and send the string to the campaign's and the wall's group."""
    campaign = Campaign.objects.select_related("room").filter(pk=campaign_id).first()
    if campaign is None:
        return
    if final is False:
        # Claims and entries can be many per second: at most 4 pushes a second per campaign.
        now = time.monotonic()
        if now - _last_push.get(campaign_id, 0) < 0.25:
            return
        _last_push[campaign_id] = now
    try:
        # Rendered once for every watcher, whatever thread pushes it: in the site language.
        with translation.override(settings.LANGUAGE_CODE):
            full, compact = render_progress(campaign)
        send_to_group(campaign_group(campaign_id), {"type": "campaign.progress", "html": full})
        send_to_group(WALL_PROGRESS_GROUP, {"type": "campaign.progress", "html": compact})
    except Exception:  # noqa: BLE001 - a missed push is repaired by the next one or a reload
        logger.exception("progress push for campaign %s failed", campaign_id)


def _push_on_commit(campaign_id):
    deferred.after_commit(push_progress, campaign_id)  # the click's response does not wait for the render


SUMMARY_MSGID = gettext_noop("补偿活动「%(title)s」(%(kind)s)%(status)s:发放 %(n)s/%(eligible)s 人,共 %(amount)s")


def summary_text(campaign):
    return _(SUMMARY_MSGID) % {
        "title": campaign.title, "kind": campaign.get_kind_display(), "status": campaign.get_status_display(),
        "n": campaign.issued_count, "eligible": campaign.eligible_count, "amount": yuan(campaign.issued_fen)}


def _timeline_on_commit(campaign):
    if campaign.incident_id is None:
        return
    campaign_id = campaign.pk

    def add():
        from incidents.services import add_timeline_entry

        from incidents.messages import label, message

        c = Campaign.objects.select_related("incident").get(pk=campaign_id)
        # Shown in the reader's language; the stored text is the site language's.
        text = message(SUMMARY_MSGID, title=c.title, kind=label(c.get_kind_display()),
                       status=label(c.get_status_display()), n=c.issued_count, eligible=c.eligible_count,
                       amount=yuan(c.issued_fen))
        add_timeline_entry(incident=c.incident, kind="compensation", message=text,
                  data={"campaign": c.pk, "kind": c.kind, "status": c.status, "issued": c.issued_count,
                        "eligible": c.eligible_count, "issued_fen": c.issued_fen,
                        "url": f"/compensation/{c.pk}/"})

    deferred.after_commit(add)


def notice_key(campaign):
    """What viewers' pages deduplicate a notice about a campaign on: one grant per viewer per campaign."""
    return f"campaign-{campaign.pk}"


def viewer_notice(grant):
    """A grant as the viewer page shows it: the text, and a coupon's "去使用" link when there is a shop."""
    from streams.viewer_notices import Notice

    link, label = _notice_link(grant.campaign)
    return Notice(notice_text(grant), key=notice_key(grant.campaign), link=link, link_label=label)


def _notice_link(campaign):
    """(url, label) a viewer's notice about this campaign links to: a coupon's shop, a draw's public page."""
    from django.urls import reverse

    if campaign.kind == Campaign.Kind.COUPON:
        return campaign.use_url(), ""
    if campaign.is_draw:
        return reverse("compensation:verify", args=[campaign.pk]), _("查看开奖")
    return "", ""


def notice_text(grant):
    campaign = grant.campaign
    if campaign.kind == Campaign.Kind.COUPON:
        return _("你获得了 %(amount)s 无门槛优惠券(券码 %(code)s,%(until)s 前有效)") % {
            "amount": yuan(grant.amount_fen), "code": grant.code,
            "until": timezone.localtime(campaign.valid_until).strftime("%Y-%m-%d %H:%M")}
    if campaign.kind == Campaign.Kind.RED_PACKET:
        return _("你抢到了 %(amount)s 红包") % {"amount": yuan(grant.amount_fen)}
    return _("恭喜中奖!你获得了「%(title)s」%(amount)s") % {"title": campaign.title, "amount": yuan(grant.amount_fen)}


def notify_recipients(campaign_id):
    """Tell the viewers who received something, on their open viewer pages."""
    notify = stream_services.notify_viewers
    campaign = Campaign.objects.select_related("room").get(pk=campaign_id)
    if campaign.status != Campaign.Status.COMPLETED:
        return 0
    with translation.override(settings.LANGUAGE_CODE):  # pushed to every viewer: the site language
        return _notify_in_language(notify, campaign)


def _notify_in_language(notify, campaign):
    link, label = _notice_link(campaign)
    if campaign.kind == Campaign.Kind.COUPON and link:
        text = _("你获得了 %(amount)s 无门槛优惠券,点「去使用」下单时抵扣") % {"amount": yuan(campaign.amount_fen)}
    elif campaign.kind == Campaign.Kind.COUPON:
        text = _("你获得了 %(amount)s 无门槛优惠券,请到「我的券」查看") % {"amount": yuan(campaign.amount_fen)}
    elif campaign.kind == Campaign.Kind.RED_PACKET:
        return 0  # claimers saw their amount when they claimed
    else:
        text = _("恭喜中奖!你获得了「%(title)s」%(amount)s") % {"title": campaign.title,
                                                           "amount": yuan(campaign.amount_fen)}
    total = 0
    ids = Grant.objects.filter(campaign=campaign).values_list("viewer_id", flat=True).order_by("viewer_id")
    chunk = []
    for viewer_id in ids.iterator(chunk_size=5000):
        chunk.append(viewer_id)
        if len(chunk) == 5000:
            total += notify(room=campaign.room, viewer_ids=chunk, text=text, key=notice_key(campaign),
                            link=link, link_label=label) or 0
            chunk = []
    if chunk:
        total += notify(room=campaign.room, viewer_ids=chunk, text=text, key=notice_key(campaign), link=link,
                        link_label=label) or 0
    return total


def viewer_notices(room, viewer):
    """Provider for streams.viewer_notices: what this viewer received in this room, one notice per campaign.
    (Open red packets and lucky bags are the offer cards of the compensation panel, not notices as well.)"""
    if viewer is None:
        return []
    return [viewer_notice(g) for g in selectors.grants_for_viewer(room, viewer)]


# --- Shop API -----------------------------------------------------------------------------------


def create_shop_client(name, merchant, shop_url=""):
    """Register a merchant's shop; returns (client, raw token) — the token is shown once and stored hashed.

    shop_url: where the merchant's coupons are spent (the viewer page's "去使用")."""
    from streams.models import hash_token

    if not (merchant or "").strip():
        raise CompensationError(_("接入方必须属于一个商家"))
    raw = "shop_" + secrets.token_urlsafe(32)
    client = ShopClient.objects.create(name=name, merchant=merchant.strip(), token_hash=hash_token(raw),
                                       token_hint=raw[-4:], shop_url=_shop_url(shop_url))
    return client, raw


def shop_grants(client):
    """The grants a shop client may see: its own merchant's, nobody else's."""
    if not client.merchant:
        return Grant.objects.none()
    return Grant.objects.filter(campaign__room__merchant=client.merchant)


def shop_campaigns(client):
    if not client.merchant:
        return Campaign.objects.none()
    return Campaign.objects.filter(room__merchant=client.merchant)


def shop_client_for_token(raw):
    from streams.models import hash_token

    if not raw:
        return None
    return ShopClient.objects.filter(token_hash=hash_token(raw), is_active=True).first()


def coupon_state(grant, now=None):
    now = now or timezone.now()
    campaign = grant.campaign
    if grant.redeemed_at:
        return "redeemed"
    if campaign.revoked_at:
        return "revoked"
    if campaign.valid_from and now < campaign.valid_from:
        return "not_yet_valid"
    if campaign.valid_until and now >= campaign.valid_until:
        return "expired"
    return "valid"


STATE_MESSAGES = {  # translated where used
    "redeemed": gettext_noop("券已被核销"),
    "revoked": gettext_noop("券已被撤销"),
    "not_yet_valid": gettext_noop("券尚未生效"),
    "expired": gettext_noop("券已过期"),
    "valid": gettext_noop("可用"),
}


def describe_grant(grant, now=None):
    state = coupon_state(grant, now)
    campaign = grant.campaign
    return {"code": grant.code, "state": state, "message": _(STATE_MESSAGES[state]), "amount_fen": grant.amount_fen,
            "campaign": campaign.pk, "kind": campaign.kind,
            "valid_from": campaign.valid_from.isoformat() if campaign.valid_from else None,
            "valid_until": campaign.valid_until.isoformat() if campaign.valid_until else None,
            "redeemed_at": grant.redeemed_at.isoformat() if grant.redeemed_at else None,
            "order_ref": grant.redeemed_order or None}


def redeem(*, client, request_id, code, order_ref=""):
    """Redeem a code for the shop. Idempotent on (client, request_id): a retry gets the first answer.

    Returns (http_status, body).
    """
    request_id = (request_id or "").strip()
    if not request_id or len(request_id) > 64:
        return 400, {"error": "bad_request", "message": _("request_id 必填(最多 64 个字符)")}
    code = (code or "").strip().upper()
    previous = Redemption.objects.filter(client=client, request_id=request_id).first()
    if previous is not None:
        return _replay(previous, code)
    try:
        with transaction.atomic():
            # Another merchant's code is "unknown" here: a token never learns what other shops issued.
            grant = (shop_grants(client).select_for_update(of=("self",)).select_related("campaign")
                     .filter(code=code).first())
            if grant is None:
                status, body = 404, {"error": "unknown_code", "message": _("券码不存在")}
            else:
                _lock_campaign_for_share(grant.campaign_id)  # a revoke in flight finishes first
                grant.campaign.refresh_from_db(fields=["revoked_at"])
                state = coupon_state(grant)
                if state == "valid":
                    grant.redeemed_at, grant.redeemed_order = timezone.now(), (order_ref or "")[:64]
                    grant.save(update_fields=["redeemed_at", "redeemed_order"])
                    status, body = 200, {"ok": True, **describe_grant(grant)}
                else:
                    status = 409 if state == "redeemed" else 410 if state in ("expired", "revoked") else 422
                    body = {"error": state, **describe_grant(grant)}
            Redemption.objects.create(client=client, request_id=request_id, grant=grant, order_ref=(order_ref or "")[:64],
                                      status_code=status, response={**body, "request_id": request_id, "request_code": code})
    except IntegrityError:
        # The same request_id raced with itself: the first one won; answer what it answered.
        return _replay(Redemption.objects.get(client=client, request_id=request_id), code)
    body["request_id"] = request_id
    return status, body


def _replay(previous, code):
    body = {k: v for k, v in previous.response.items() if k != "request_code"}
    if previous.response.get("request_code") != code:
        return 422, {"error": "request_id_reused", "request_id": previous.request_id,
                     "message": _("同一个 request_id 不能用于不同的券码")}
    body["replayed"] = True
    return previous.status_code, body
