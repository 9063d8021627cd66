"""Reads for compensation: audience, previews, progress, reports."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import (Count, DateTimeField, DurationField, ExpressionWrapper, F, Q, Subquery, Sum,
                              Value)
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone

from streams.models import LiveRoom, Viewer, ViewerSession

from .models import Campaign, DrawEntrant, Grant, IssuanceBatch, Recipient, RedPacketShare


def incident_window(incident, now=None):
    """The outage window used for compensation: detected_at .. resolved_at (or now if unresolved)."""
    end = incident.resolved_at or now or timezone.now()
    return incident.detected_at, max(end, incident.detected_at)


def audience(room_id, window_start, window_end, min_overlap_s, include_anonymous=False):
    """Viewers present in the room during the window for at least `min_overlap_s` seconds in total.

    Per session, overlap = min(coalesce(left_at, last_seen_at), end) - max(joined_at, start); the
    overlaps are summed per viewer across sessions, in SQL. Rows: {"viewer_id", "overlap"}.
    Only viewers identified by the room's merchant count unless `include_anonymous`; never less than
    COMPENSATION_MIN_WATCH_S of presence.
    """
    min_overlap_s = max(int(min_overlap_s), settings.COMPENSATION_MIN_WATCH_S)
    start = Value(window_start, output_field=DateTimeField())
    end = Value(window_end, output_field=DateTimeField())
    session_end = Coalesce("left_at", "last_seen_at")
    overlap = ExpressionWrapper(Least(session_end, end) - Greatest(F("joined_at"), start),
                                output_field=DurationField())
    sessions = ViewerSession.objects.filter(room_id=room_id, joined_at__lt=window_end)
    if not include_anonymous:
        merchant = LiveRoom.objects.filter(pk=room_id).values("merchant")
        sessions = sessions.filter(viewer__platform_user_id__isnull=False,
                                   viewer__platform_merchant=Subquery(merchant[:1]))
    return (
        sessions
        .annotate(session_end=session_end)
        .filter(session_end__gt=window_start)
        .values("viewer_id")
        .annotate(overlap=Sum(overlap))
        .filter(overlap__gte=timedelta(seconds=min_overlap_s))
        .order_by()
    )


def eligible_count(room_id, window_start, window_end, min_overlap_s, include_anonymous=False):
    return audience(room_id, window_start, window_end, min_overlap_s, include_anonymous).count()


def cost_for(kind, amount_fen, eligible, winner_count=None):
    """What a campaign costs at most for `eligible` viewers (what the budget must hold)."""
    if kind == Campaign.Kind.COUPON:
        return eligible * amount_fen
    if kind == Campaign.Kind.RED_PACKET:
        return amount_fen if eligible else 0
    return min(winner_count or 0, eligible) * amount_fen


@dataclass
class Progress:
    campaign_id: int
    status: str
    status_label: str
    done: int
    target: int
    rate_per_s: float
    eta_s: float | None
    label: str
    finished: bool

    @property
    def percent(self):
        if not self.target:
            return 100 if self.finished else 0
        return min(100, int(100 * self.done / self.target))


def campaign_progress(campaign):
    """Issued so far / target. Monotonic: it only counts committed work (done batches, claims, grants)."""
    kind = campaign.kind
    if kind == Campaign.Kind.COUPON:
        done = IssuanceBatch.objects.filter(campaign=campaign, status=IssuanceBatch.Status.DONE).aggregate(
            n=Coalesce(Sum("granted_count"), 0))["n"]
        target = campaign.eligible_count
        label = "issued"
    elif kind == Campaign.Kind.RED_PACKET:
        done = RedPacketShare.objects.filter(campaign=campaign, viewer__isnull=False).count()
        target = campaign.share_count or 0
        label = "claimed"
    else:
        if campaign.draw_closed_at:
            done = Grant.objects.filter(campaign=campaign).count()
            target = len(campaign.winners)
            label = "winners"
        else:
            done = DrawEntrant.objects.filter(campaign=campaign).count()
            target = campaign.eligible_count
            label = "entrants"
    finished = campaign.status in (Campaign.Status.COMPLETED, Campaign.Status.FAILED, Campaign.Status.CANCELLED)
    if finished and campaign.status == Campaign.Status.COMPLETED and kind == Campaign.Kind.COUPON:
        done = campaign.issued_count  # the database count taken at completion
    rate, eta = 0.0, None
    if campaign.started_at and done:
        end = campaign.finished_at or timezone.now()
        elapsed = max((end - campaign.started_at).total_seconds(), 1e-3)
        rate = done / elapsed
        if not finished and label == "issued":
            eta = max(0.0, (target - done) / rate) if rate else None
    if not finished and campaign.closes_at:
        eta = max(0.0, (campaign.closes_at - timezone.now()).total_seconds())
    return Progress(campaign.pk, campaign.status, campaign.get_status_display(), done, target, rate, eta, label,
                    finished)


def grant_report(grants, now=None):
    """Issued / redeemed / expired / revoked counts and amounts for a queryset of grants."""
    now = now or timezone.now()
    open_ = Q(redeemed_at__isnull=True)
    revoked = open_ & Q(campaign__revoked_at__isnull=False)
    expired = open_ & Q(campaign__revoked_at__isnull=True) & Q(campaign__valid_until__lt=now)
    zero = Value(0)
    row = grants.aggregate(
        issued=Count("pk"), issued_fen=Coalesce(Sum("amount_fen"), zero),
        redeemed=Count("pk", filter=~open_), redeemed_fen=Coalesce(Sum("amount_fen", filter=~open_), zero),
        expired=Count("pk", filter=expired), expired_fen=Coalesce(Sum("amount_fen", filter=expired), zero),
        revoked=Count("pk", filter=revoked), revoked_fen=Coalesce(Sum("amount_fen", filter=revoked), zero),
    )
    row["outstanding"] = row["issued"] - row["redeemed"] - row["expired"] - row["revoked"]
    row["outstanding_fen"] = row["issued_fen"] - row["redeemed_fen"] - row["expired_fen"] - row["revoked_fen"]
    return row


def campaign_report(campaign):
    return grant_report(Grant.objects.filter(campaign=campaign))


def incident_report(incident):
    rows = [(c, campaign_report(c)) for c in incident.campaigns.select_related("budget").order_by("created_at")]
    total = grant_report(Grant.objects.filter(campaign__incident=incident))
    return rows, total


def grants_for_viewer(room, viewer):
    return (Grant.objects.filter(viewer=viewer, campaign__room=room)
            .select_related("campaign").order_by("-issued_at")[:20])


def open_offers(room, viewer):
    """Campaigns this viewer can act on now: red packets to claim, lucky bags to join."""
    if viewer is None:
        return []
    now = timezone.now()
    offers = []
    open_campaigns = Campaign.objects.filter(
        room=room, status=Campaign.Status.ISSUING,
        kind__in=[Campaign.Kind.RED_PACKET, Campaign.Kind.LUCKY_BAG],
    ).filter(Q(closes_at__isnull=True) | Q(closes_at__gt=now), draw_closed_at__isnull=True)
    for campaign in open_campaigns:
        if not Recipient.objects.filter(campaign=campaign, viewer=viewer).exists():
            continue
        if campaign.kind == Campaign.Kind.RED_PACKET:
            done = Grant.objects.filter(campaign=campaign, viewer=viewer).exists()
        else:
            done = DrawEntrant.objects.filter(campaign=campaign, viewer=viewer).exists()
        offers.append({"campaign": campaign, "done": done})
    return offers


def active_campaigns(limit=10):
    return list(Campaign.objects.filter(status=Campaign.Status.ISSUING).select_related("room")[:limit])


def wall_badges(rooms):
    """Tile badges for the wall: rooms with a campaign being issued, linking to its live progress."""
    slugs = {getattr(r, "slug", r) for r in rooms}
    badges = {}
    for campaign in Campaign.objects.filter(status=Campaign.Status.ISSUING, room__slug__in=slugs).select_related("room"):
        progress = campaign_progress(campaign)
        badges[campaign.room.slug] = {"label": f"{campaign.get_kind_display()} {progress.percent}%",
                                      "url": f"/compensation/{campaign.pk}/", "severity": 4}
    return badges


def campaign_batches_summary(campaign):
    return IssuanceBatch.objects.filter(campaign=campaign).aggregate(
        total=Count("pk"), done=Count("pk", filter=Q(status=IssuanceBatch.Status.DONE)),
        attempts=Coalesce(Sum("attempts"), 0))


# --- Fraud panel (what the approver sees before approving) -------------------------------------

SHARED_ADDRESS_MIN = 3  # identities presented from one address before it is worth a look
JOIN_BURST_MIN = 20  # audience viewers joining within one second


def fraud_signals(campaign):
    """Signs of farmed presence in a campaign's audience: many identities from one address or user
    agent, bursts of joins in one second, anonymous viewers counted."""
    from django.db.models.functions import TruncSecond
    from streams.models import Viewer

    if campaign.status == Campaign.Status.DRAFT or not Recipient.objects.filter(campaign=campaign).exists():
        ids = audience(campaign.room_id, campaign.window_start, campaign.window_end, campaign.min_overlap_s,
                       campaign.include_anonymous).values("viewer_id")
    else:
        ids = Recipient.objects.filter(campaign=campaign).values("viewer_id")
    viewers = Viewer.objects.filter(pk__in=ids)
    by_address = list(viewers.exclude(last_address=None).values("last_address").annotate(n=Count("id"))
                      .filter(n__gte=SHARED_ADDRESS_MIN).order_by("-n")[:10])
    by_agent = list(viewers.exclude(last_user_agent="").values("last_user_agent").annotate(n=Count("id"))
                    .filter(n__gte=SHARED_ADDRESS_MIN).order_by("-n")[:5])
    # Joins of the viewers who could count (a join, not an IN over the audience aggregate: that plan took
    # 30 s for 20 000 viewers).
    joins = ViewerSession.objects.filter(room_id=campaign.room_id,
                                         joined_at__gte=campaign.window_start - timedelta(hours=1),
                                         joined_at__lt=campaign.window_end)
    if not campaign.include_anonymous:
        merchant = LiveRoom.objects.filter(pk=campaign.room_id).values("merchant")
        joins = joins.filter(viewer__platform_user_id__isnull=False, viewer__platform_merchant=Subquery(merchant[:1]))
    bursts = list(joins.annotate(second=TruncSecond("joined_at")).values("second")
                  .annotate(n=Count("viewer_id", distinct=True)).filter(n__gte=JOIN_BURST_MIN)
                  .order_by("-n")[:5])
    anonymous = viewers.filter(platform_user_id=None).count()
    return {"by_address": by_address, "by_agent": by_agent, "bursts": bursts, "anonymous": anonymous,
            "flagged": bool(by_address or by_agent or bursts or anonymous)}


# --- Public draw page ------------------------------------------------------------------------------


def platform_viewer(room, platform_user_id):
    """The viewer a room's merchant knows by this platform user id, or None."""
    if not platform_user_id:
        return None
    return Viewer.objects.filter(platform_merchant=room.merchant, platform_user_id=platform_user_id).first()


def draw_standing(campaign, viewer):
    """"won", "entered" (drawn, not won / not drawn yet), or "absent" for this viewer in this draw."""
    if viewer is None:
        return "absent"
    if campaign.draw_closed_at and viewer.pk in (campaign.winners or []):
        return "won"
    if DrawEntrant.objects.filter(campaign=campaign, viewer=viewer).exists():
        return "entered"
    return "absent"


def winner_names(campaign, public=True):
    """The winners in draw order by name: masked for the public, in full for the team."""
    winner_ids = [int(i) for i in (campaign.winners or [])]
    viewers = {v.pk: v for v in Viewer.objects.filter(pk__in=winner_ids)}
    return [(viewers[i].public_name if public else viewers[i].display_name) if i in viewers else "—"
            for i in winner_ids]


def draw_public_view(campaign, viewer):
    """What the public draw page shows: winners by masked display name (in draw order), and where this
    browser's viewer stands."""
    return {"campaign": campaign, "winner_names": winner_names(campaign),
            "winner_ids": [int(i) for i in (campaign.winners or [])],
            "my_standing": draw_standing(campaign, viewer) if viewer is not None else None}
def retention_holds():
    """Windows pruning must keep (streams.hooks.register_retention_holds): the audience window of every
    campaign not yet closed (draft, approved or issuing), whose eligibility is computed from presence."""
    return (Campaign.objects.filter(status__in=[Campaign.Status.DRAFT, Campaign.Status.APPROVED,
                                                Campaign.Status.ISSUING])
            .values_list("room_id", "window_start", "window_end"))
