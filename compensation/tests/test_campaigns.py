"""Campaign lifecycle, audience, budget and approval rules on real PostgreSQL (in-process issuance)."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from compensation import selectors, services
from compensation.models import Budget, Campaign, DrawEntrant, Grant, IssuanceBatch, RedPacketShare
from compensation.services import CompensationError
from streams.models import ControlAction, Viewer, ViewerSession

from .conftest import add_viewers, present_during


def make_coupon(actor, room, budget, incident, amount_fen=500, **kwargs):
    return services.create_campaign(actor=actor, room=room, budget=budget, incident=incident,
                                    kind=Campaign.Kind.COUPON, amount_fen=amount_fen, **kwargs)


def run_all_batches(campaign):
    """Run the queued batches here (the tests in this module do not start a Celery worker)."""
    for batch_id in IssuanceBatch.objects.filter(campaign=campaign).values_list("pk", flat=True):
        services.run_batch(batch_id)
    campaign.refresh_from_db()
    return campaign


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    """Queued tasks are collected instead of sent, so the test decides when (and how often) they run."""
    from controlroom import background

    queued = []
    monkeypatch.setattr(background, "enqueue", lambda task, *args: queued.append((task.name, args)))
    return queued


# --- Audience ---------------------------------------------------------------------------------


def test_audience_counts_viewers_present_long_enough_summed_across_sessions(room, outage, settings):
    settings.COMPENSATION_MIN_WATCH_S = 0  # to show the "any overlap" case below
    start, end = outage.detected_at, outage.resolved_at
    s = timedelta(seconds=1)
    viewers = {name: Viewer.objects.create(device_id=name, platform_merchant=room.merchant, platform_user_id=name)
               for name in
               ["whole", "split", "brief", "before", "after", "edge", "open", "other_room"]}
    def session(name, joined, last_seen, left=None, the_room=room):
        ViewerSession.objects.create(room=the_room, viewer=viewers[name], joined_at=joined, last_seen_at=last_seen,
                                     left_at=left)
    session("whole", start - 300 * s, end + 300 * s, end + 300 * s)           # all 600 s
    session("split", start + 10 * s, start + 40 * s, start + 40 * s)          # 30 s ...
    session("split", end - 35 * s, end + 100 * s, end + 100 * s)              # ... + 35 s = 65 s
    session("brief", start + 100 * s, start + 159 * s, start + 159 * s)       # 59 s: not enough
    session("before", start - 600 * s, start - 1 * s, start - 1 * s)          # left before the outage
    session("after", end + 1 * s, end + 600 * s)                              # came after it
    session("edge", start - 50 * s, start + 60 * s, start + 60 * s)           # exactly 60 s counts
    session("open", end - 61 * s, end + 5 * s)                                # still open: last_seen clips it
    from streams.models import LiveRoom
    elsewhere = LiveRoom.objects.create(name="别的直播间", slug="elsewhere", merchant="m")
    session("other_room", start, end, end, the_room=elsewhere)

    rows = {r["viewer_id"]: r["overlap"] for r in selectors.audience(room.pk, start, end, 60)}
    names = {v.pk: n for n, v in viewers.items()}
    assert sorted(names[v] for v in rows) == ["edge", "open", "split", "whole"]
    assert rows[viewers["split"].pk] == timedelta(seconds=65)
    assert rows[viewers["whole"].pk] == timedelta(seconds=600)
    assert selectors.eligible_count(room.pk, start, end, 0) == 5  # "brief" joins when any overlap counts


def test_operator_sees_eligible_count_and_cost_before_issuing(operator, room, budget, outage):
    present_during(room, outage, 37)
    campaign = make_coupon(operator, room, budget, outage, amount_fen=800)
    assert (campaign.status, campaign.eligible_count, campaign.cost_fen) == ("draft", 37, 37 * 800)
    assert not Grant.objects.exists()
    action = ControlAction.objects.get(action="create_campaign")
    assert action.actor == operator and action.detail["eligible"] == 37


# --- Issue, batches, replay ----------------------------------------------------------------------


def test_issuing_a_coupon_campaign_grants_each_viewer_once_and_settles_the_budget(
        operator, room, budget, outage, no_broker):
    ids = present_during(room, outage, 2500)
    campaign = make_coupon(operator, room, budget, outage)
    campaign = services.issue_campaign(actor=operator, campaign_id=campaign.pk, batch_size=1000)
    assert campaign.status == "issuing"
    assert [name for name, _ in no_broker].count("compensation.tasks.issue_batch") == 3
    budget.refresh_from_db()
    assert budget.reserved_fen == 2500 * 500
    campaign = run_all_batches(campaign)
    assert campaign.status == "completed"
    assert campaign.issued_count == Grant.objects.filter(campaign=campaign).count() == 2500
    assert set(Grant.objects.filter(campaign=campaign).values_list("viewer_id", flat=True)) == set(ids)
    assert len(set(Grant.objects.values_list("code", flat=True))) == 2500
    budget.refresh_from_db()
    assert budget.reserved_fen == campaign.issued_fen == 2500 * 500
    progress = selectors.campaign_progress(campaign)
    assert (progress.done, progress.target, progress.percent) == (2500, 2500, 100)
    assert ControlAction.objects.filter(action="issue_campaign", actor=operator).exists()


def test_replaying_a_batch_inserts_nothing(operator, room, budget, outage):
    present_during(room, outage, 1200)
    campaign = make_coupon(operator, room, budget, outage)
    services.issue_campaign(actor=operator, campaign_id=campaign.pk, batch_size=1000)
    first = IssuanceBatch.objects.get(campaign=campaign, number=1)
    assert services.run_batch(first.pk) == 1000
    assert services.run_batch(first.pk) is None  # done: a redelivered task does nothing
    # Even if the done flag were lost, the unique constraints make the replay insert nothing.
    IssuanceBatch.objects.filter(pk=first.pk).update(status="pending")
    assert services.run_batch(first.pk) == 0
    assert Grant.objects.filter(campaign=campaign).count() == 1000
    run_all_batches(campaign)
    assert Grant.objects.filter(campaign=campaign).count() == 1200


def test_sweeper_requeues_only_batches_stuck_longer_than_the_threshold(operator, room, budget, outage, no_broker,
                                                                       settings):
    present_during(room, outage, 3000)
    campaign = make_coupon(operator, room, budget, outage)
    services.issue_campaign(actor=operator, campaign_id=campaign.pk, batch_size=1000)
    no_broker.clear()
    assert services.sweep() == []  # queued just now: not stuck
    IssuanceBatch.objects.filter(campaign=campaign, number__in=[1, 2]).update(
        enqueued_at=timezone.now() - timedelta(seconds=settings.COMPENSATION_STUCK_AFTER_S + 1))
    services.run_batch(IssuanceBatch.objects.get(campaign=campaign, number=1).pk)
    requeued = services.sweep()
    assert requeued == [IssuanceBatch.objects.get(campaign=campaign, number=2).pk]
    assert no_broker == [("compensation.tasks.issue_batch", (requeued[0],))]


def test_a_cancelled_campaign_stops_issuing_and_returns_the_rest_of_the_budget(operator, room, budget, outage):
    present_during(room, outage, 2000)
    campaign = make_coupon(operator, room, budget, outage)
    services.issue_campaign(actor=operator, campaign_id=campaign.pk, batch_size=1000)
    services.run_batch(IssuanceBatch.objects.get(campaign=campaign, number=1).pk)
    services.cancel_campaign(actor=operator, campaign_id=campaign.pk, reason="发错了")
    campaign = run_all_batches(campaign)
    assert campaign.status == "cancelled" and campaign.issued_count == 1000
    assert Grant.objects.filter(campaign=campaign).count() == 1000
    budget.refresh_from_db()
    assert budget.reserved_fen == 1000 * 500
    assert ControlAction.objects.filter(action="cancel_campaign", reason="发错了").exists()


# --- Budget ----------------------------------------------------------------------------------------


def test_budget_below_cost_is_refused_with_a_clear_error(operator, room, outage):
    small = Budget.objects.create(name="小预算", total_fen=10_000, per_viewer_cap_fen=5_000)
    present_during(room, outage, 30)
    with pytest.raises(CompensationError, match="预算不足"):
        make_coupon(operator, room, small, outage, amount_fen=500)  # 30 x 500 = 15,000 > 10,000


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_campaigns_on_one_budget_never_overspend(operator, room, outage):
    shared = Budget.objects.create(name="共享预算", total_fen=150_000, per_viewer_cap_fen=5_000)
    present_during(room, outage, 200)  # each campaign costs 200 x 500 = 100,000: only one fits
    campaigns = [make_coupon(operator, room, shared, outage) for _ in range(2)]
    barrier = threading.Barrier(2)
    outcomes = []

    def issue(campaign_id):
        barrier.wait()
        try:
            services.issue_campaign(actor=operator, campaign_id=campaign_id)
            outcomes.append("issued")
        except CompensationError as exc:
            outcomes.append(str(exc.messages[0]))
        finally:
            connection.close()

    threads = [threading.Thread(target=issue, args=(c.pk,)) for c in campaigns]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert outcomes.count("issued") == 1
    assert any("预算不足" in o for o in outcomes)
    shared.refresh_from_db()
    assert shared.reserved_fen == 100_000 <= shared.total_fen
    refused = ControlAction.objects.get(action="issue_campaign", outcome="refused")
    assert "预算不足" in refused.reason


def test_the_database_itself_refuses_overspending(budget):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Budget.objects.filter(pk=budget.pk).update(reserved_fen=budget.total_fen + 1)


# --- Approval (two-person rule) and states -------------------------------------------------------------


def test_expensive_campaign_needs_a_different_manager_to_approve(operator, manager, room, outage, django_user_model):
    from django.contrib.auth.models import Group

    budget = Budget.objects.create(name="需审批", total_fen=10_000_000, per_viewer_cap_fen=5_000,
                                   approval_threshold_fen=10_000)
    present_during(room, outage, 50)  # 50 x 500 = 25,000 > 10,000
    campaign = make_coupon(manager, room, budget, outage)
    with pytest.raises(CompensationError, match="需要经理审批"):
        services.issue_campaign(actor=operator, campaign_id=campaign.pk)
    with pytest.raises(CompensationError, match="审批人不能是活动创建人"):
        services.approve_campaign(actor=manager, campaign_id=campaign.pk)
    from django.core.exceptions import PermissionDenied
    with pytest.raises(PermissionDenied):
        services.approve_campaign(actor=operator, campaign_id=campaign.pk)
    second = django_user_model.objects.create_user("max_manager", password="x")
    second.groups.add(Group.objects.get(name="manager"))
    services.approve_campaign(actor=second, campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == "approved" and campaign.approved_by == second
    services.issue_campaign(actor=operator, campaign_id=campaign.pk)
    refusals = ControlAction.objects.filter(action__in=["approve_campaign", "issue_campaign"], outcome="refused")
    assert refusals.count() == 2
    with pytest.raises(CompensationError, match="不能从"):
        services.approve_campaign(actor=second, campaign_id=campaign.pk)  # issuing -> approved is not a transition


def test_cheap_campaign_is_issued_without_a_second_person(operator, room, budget, outage):
    present_during(room, outage, 5)
    campaign = make_coupon(operator, room, budget, outage)
    assert not services.needs_approval(campaign)
    assert services.issue_campaign(actor=operator, campaign_id=campaign.pk).status == "issuing"


def test_outsiders_and_floor_staff_cannot_create_or_issue(floor_assistant, outsider, room, budget, outage):
    from django.core.exceptions import PermissionDenied

    for person in (floor_assistant, outsider):
        with pytest.raises(PermissionDenied):
            make_coupon(person, room, budget, outage)


# --- Bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs,message", [
    ({"amount_fen": -500}, "金额 必须大于 0"),
    ({"amount_fen": 0}, "金额 必须大于 0"),
    ({"amount_fen": 12.5}, "必须是整数"),
    ({"amount_fen": "abc"}, "必须是整数"),
    ({"amount_fen": 9_000}, "每位观众最多"),
    ({"amount_fen": 500, "kind": "voucher"}, "未知的活动类型"),
    ({"amount_fen": 500, "min_overlap_s": -1}, "不能为负数"),
    ({"amount_fen": 5, "kind": "red_packet", "share_count": 10}, "不够分成"),
    ({"amount_fen": 500, "kind": "lucky_bag", "winner_count": 0, "countdown_s": 60}, "中奖人数 必须大于 0"),
    ({"amount_fen": 500, "kind": "lucky_bag", "winner_count": 3, "countdown_s": 5}, "至少 10 秒"),
])
def test_bad_campaign_input_gets_a_clear_error(operator, room, budget, outage, kwargs, message):
    kwargs = {"kind": Campaign.Kind.COUPON, **kwargs}
    with pytest.raises(CompensationError, match=message):
        services.create_campaign(actor=operator, room=room, budget=budget, incident=outage, **kwargs)
    assert not Campaign.objects.exists()


def test_issuing_with_nobody_present_is_refused(operator, room, budget, outage):
    campaign = make_coupon(operator, room, budget, outage)
    with pytest.raises(CompensationError, match="没有符合条件的观众"):
        services.issue_campaign(actor=operator, campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == "draft"
    budget.refresh_from_db()
    assert budget.reserved_fen == 0


# --- Red packets ------------------------------------------------------------------------------------


def test_red_packet_claims_are_atomic_one_per_viewer_and_sum_exactly(operator, room, budget, outage):
    ids = present_during(room, outage, 12)
    campaign = services.create_campaign(actor=operator, room=room, budget=budget, incident=outage,
                                        kind=Campaign.Kind.RED_PACKET, amount_fen=1000, share_count=10,
                                        share_cap_fen=300, countdown_s=60)
    services.issue_campaign(actor=operator, campaign_id=campaign.pk)
    shares = list(RedPacketShare.objects.filter(campaign=campaign).values_list("amount_fen", flat=True))
    assert len(shares) == 10 and sum(shares) == 1000 and all(1 <= s <= 300 for s in shares)
    viewers = list(Viewer.objects.filter(pk__in=ids).order_by("pk"))
    first = services.claim_red_packet(campaign_id=campaign.pk, viewer=viewers[0])
    assert services.claim_red_packet(campaign_id=campaign.pk, viewer=viewers[0]).code == first.code  # idempotent
    for v in viewers[1:10]:
        services.claim_red_packet(campaign_id=campaign.pk, viewer=v)
    campaign.refresh_from_db()
    assert campaign.status == "completed"  # all shares claimed
    with pytest.raises(CompensationError, match="红包已结束"):
        services.claim_red_packet(campaign_id=campaign.pk, viewer=viewers[10])
    assert Grant.objects.filter(campaign=campaign).aggregate(s=__import__("django").db.models.Sum("amount_fen"))["s"] \
        == 1000 == campaign.issued_fen
    stranger = Viewer.objects.create(device_id="stranger")
    with pytest.raises(CompensationError):
        services.claim_red_packet(campaign_id=campaign.pk, viewer=stranger)


@pytest.mark.django_db(transaction=True)
def test_concurrent_red_packet_claims_never_share_a_share(operator, room, outage):
    budget = Budget.objects.create(name="红包", total_fen=1_000_000, per_viewer_cap_fen=5_000)
    ids = present_during(room, outage, 16)
    campaign = services.create_campaign(actor=operator, room=room, budget=budget, incident=outage,
                                        kind=Campaign.Kind.RED_PACKET, amount_fen=800, share_count=8,
                                        share_cap_fen=200, countdown_s=60)
    services.issue_campaign(actor=operator, campaign_id=campaign.pk)
    viewers = list(Viewer.objects.filter(pk__in=ids))
    barrier = threading.Barrier(len(viewers))
    results = []

    def claim(v):
        barrier.wait()
        try:
            results.append(services.claim_red_packet(campaign_id=campaign.pk, viewer=v).amount_fen)
        except CompensationError as exc:
            results.append(exc.messages[0])
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(v,)) for v in viewers]
    [t.start() for t in threads]
    [t.join() for t in threads]
    amounts = [r for r in results if isinstance(r, int)]
    assert len(amounts) == 8 and sum(amounts) == 800
    assert RedPacketShare.objects.filter(campaign=campaign, viewer__isnull=True).count() == 0
    assert Grant.objects.filter(campaign=campaign).values("viewer").distinct().count() == 8


# --- Lucky bag: verifiable draw ----------------------------------------------------------------------


def test_lucky_bag_draw_is_verifiable_and_only_affected_viewers_may_join(operator, room, budget, outage, capsys):
    from django.core.management import call_command

    ids = present_during(room, outage, 30)
    campaign = services.create_campaign(actor=operator, room=room, budget=budget, incident=outage,
                                        kind=Campaign.Kind.LUCKY_BAG, amount_fen=2000, winner_count=5,
                                        countdown_s=60, keyword="补偿来了")
    campaign = services.issue_campaign(actor=operator, campaign_id=campaign.pk)
    assert len(campaign.seed_hash) == 64 and not campaign.seed_revealed_at
    viewers = list(Viewer.objects.filter(pk__in=ids).order_by("pk"))
    for v in viewers[:12]:
        services.enter_draw(campaign_id=campaign.pk, viewer=v)
    services.enter_draw(campaign_id=campaign.pk, viewer=viewers[0])  # double click: one entry
    entered = services.enter_by_comment(room=room, viewer=viewers[12], text="主播加油 补偿来了!")
    assert len(entered) == 1 and entered[0].via == "comment"
    latecomer = Viewer.objects.create(device_id="latecomer")
    with pytest.raises(CompensationError, match="只对事故期间在场的观众开放"):
        services.enter_draw(campaign_id=campaign.pk, viewer=latecomer)

    campaign = services.close_draw_now(actor=operator, campaign_id=campaign.pk)
    assert campaign.status == "completed" and campaign.entrants_count == 13 and len(campaign.winners) == 5
    assert sorted(Grant.objects.filter(campaign=campaign).values_list("viewer_id", flat=True)) == sorted(campaign.winners)
    assert campaign.issued_fen == 5 * 2000
    budget.refresh_from_db()
    assert budget.reserved_fen == 10_000  # reserved min(K, eligible) x prize = 5 x 2000
    with pytest.raises(CompensationError, match="已截止"):
        services.enter_draw(campaign_id=campaign.pk, viewer=viewers[20])
    assert services.draw_verification(campaign)["ok"]
    call_command("verify_draw", str(campaign.pk))
    assert "OK: the draw verifies" in capsys.readouterr().out
    assert DrawEntrant.objects.filter(campaign=campaign).count() == 13


def test_lottery_enters_the_whole_audience_and_draws_min_k_entrants(operator, room, budget, outage, no_broker):
    present_during(room, outage, 3)
    campaign = services.create_campaign(actor=operator, room=room, budget=budget, incident=outage,
                                        kind=Campaign.Kind.LOTTERY, amount_fen=1000, winner_count=10)
    assert campaign.cost_fen == 3 * 1000  # at most min(K, eligible) prizes
    services.issue_campaign(actor=operator, campaign_id=campaign.pk)
    assert ("compensation.tasks.close_draw", (campaign.pk,)) in no_broker  # countdown 0: draw at once
    campaign = services.close_draw(campaign.pk)
    assert len(campaign.winners) == 3 and campaign.status == "completed"


@pytest.mark.django_db(transaction=True)
def test_batches_of_one_campaign_run_side_by_side(operator, room, outage):
    """Regression: a batch must lock only its own row; locking the campaign row too made SKIP LOCKED
    skip every other batch while one was running (they then waited 60 s for the sweeper)."""
    budget = Budget.objects.create(name="并行", total_fen=10**9, per_viewer_cap_fen=5_000, approval_threshold_fen=10**9)
    present_during(room, outage, 4000)
    campaign = make_coupon(operator, room, budget, outage)
    services.issue_campaign(actor=operator, campaign_id=campaign.pk, batch_size=1000)
    ids = list(IssuanceBatch.objects.filter(campaign=campaign).values_list("pk", flat=True))
    barrier = threading.Barrier(len(ids))
    inserted = {}

    def run(batch_id):
        barrier.wait()
        try:
            inserted[batch_id] = services.run_batch(batch_id)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in ids]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert inserted == {i: 1000 for i in ids}
    campaign.refresh_from_db()
    assert campaign.status == "completed" and campaign.issued_count == 4000


def test_wall_tile_shows_a_campaign_being_issued(operator, room, budget, outage):
    from streams import hooks

    present_during(room, outage, 1500)
    campaign = make_coupon(operator, room, budget, outage)
    services.issue_campaign(actor=operator, campaign_id=campaign.pk, batch_size=1000)
    services.run_batch(IssuanceBatch.objects.get(campaign=campaign, number=1).pk)
    badge = selectors.wall_badges([room])[room.slug]
    assert badge == {"label": "无门槛优惠券 66%", "url": f"/compensation/{campaign.pk}/", "severity": 4}
    if hasattr(hooks, "tile_badges"):
        assert badge in hooks.tile_badges([room]).get(room.slug, [])


def test_a_batch_that_keeps_failing_fails_the_campaign_and_releases_the_rest(operator, room, budget, outage,
                                                                            settings):
    present_during(room, outage, 2000)
    campaign = make_coupon(operator, room, budget, outage)
    services.issue_campaign(actor=operator, campaign_id=campaign.pk, batch_size=1000)
    services.run_batch(IssuanceBatch.objects.get(campaign=campaign, number=1).pk)
    IssuanceBatch.objects.filter(campaign=campaign, number=2).update(
        attempts=services.MAX_BATCH_ATTEMPTS,
        enqueued_at=timezone.now() - timedelta(seconds=settings.COMPENSATION_STUCK_AFTER_S + 1))
    services.sweep()
    campaign.refresh_from_db()
    assert campaign.status == "failed" and "重试" in campaign.failure_reason
    assert campaign.issued_count == 1000
    budget.refresh_from_db()
    assert budget.reserved_fen == 1000 * 500
    assert ControlAction.objects.filter(action="fail_campaign", outcome="failed").exists()


@pytest.mark.parametrize("severity,downtime_s,kind,amount", [
    (3, 30, "red_packet", 88 * 100),   # short glitch: red packet, 0.88 per head for 100 viewers
    (3, 240, "coupon", 700),           # 4 minutes: 3 + 4 yuan
    (2, 30, "coupon", 400),            # SEV2 even if short: coupon
    (3, 3600, "lucky_bag", 5000),      # an hour: lucky bag
    (1, 60, "lucky_bag", 5000),        # SEV1: lucky bag
])
def test_policy_suggests_kind_and_amount_from_severity_and_downtime(severity, downtime_s, kind, amount):
    suggestion = services.suggest(severity=severity, downtime_s=downtime_s, eligible=100, per_viewer_cap_fen=10_000)
    assert (suggestion["kind"], suggestion["amount_fen"]) == (kind, amount)
    assert services.suggest(severity=severity, downtime_s=downtime_s, eligible=100,
                            per_viewer_cap_fen=50)["amount_fen"] <= 50 * (100 if kind == "red_packet" else 1)


def test_commenting_the_keyword_joins_the_lucky_bag(operator, room, budget, outage,
                                                    django_capture_on_commit_callbacks):
    from streams.models import ChatMessage

    ids = present_during(room, outage, 3)
    bag = services.create_campaign(actor=operator, room=room, budget=budget, incident=outage,
                                   kind=Campaign.Kind.LUCKY_BAG, amount_fen=1000, winner_count=1, countdown_s=60,
                                   keyword="我要福袋")
    services.issue_campaign(actor=operator, campaign_id=bag.pk)
    with django_capture_on_commit_callbacks(execute=True):
        ChatMessage.objects.create(room=room, viewer_id=ids[0], author_name="a", text="我要福袋!!")
        ChatMessage.objects.create(room=room, viewer_id=ids[1], author_name="b", text="主播好")
    assert list(DrawEntrant.objects.filter(campaign=bag).values_list("viewer_id", "via")) == [(ids[0], "comment")]


def test_verify_draw_command_rejects_a_tampered_entrant_list(operator, room, budget, outage, tmp_path):
    from django.core.management import CommandError, call_command

    ids = present_during(room, outage, 8)
    lottery = services.create_campaign(actor=operator, room=room, budget=budget, incident=outage,
                                       kind=Campaign.Kind.LOTTERY, amount_fen=100, winner_count=3)
    services.issue_campaign(actor=operator, campaign_id=lottery.pk)
    lottery = services.close_draw(lottery.pk)
    honest = tmp_path / "entrants.txt"
    honest.write_text("\n".join(str(i) for i in sorted(ids)))
    call_command("verify_draw", str(lottery.pk), "--entrants", str(honest), "--seed", lottery.seed)
    tampered = tmp_path / "tampered.txt"
    tampered.write_text("\n".join(str(i) for i in sorted(ids)[1:]))  # someone dropped an entrant
    with pytest.raises(CommandError, match="VERIFICATION FAILED"):
        call_command("verify_draw", str(lottery.pk), "--entrants", str(tampered))
    with pytest.raises(CommandError, match="VERIFICATION FAILED"):
        call_command("verify_draw", str(lottery.pk), "--seed", "00" * 32)
