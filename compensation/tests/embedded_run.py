"""Run a coupon campaign on the embedded default (SQLite, no Redis): the in-process worker issues it.

Executed by test_embedded.py in a fresh process (settings are read at start-up); prints a JSON result.
"""

import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlroom.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402

assert settings.EMBEDDED and not settings.USES_POSTGRES
call_command("migrate", verbosity=0)

from compensation import services  # noqa: E402
from compensation.models import Budget, Campaign, Grant, IssuanceBatch  # noqa: E402
from streams.models import LiveRoom, Viewer, ViewerSession  # noqa: E402

operator = User.objects.create_user("olivia_ops", password="x")
operator.groups.add(Group.objects.get_or_create(name="ops")[0])
room = LiveRoom.objects.create(name="本地直播间", slug="local", merchant="m", status=LiveRoom.Status.LIVE)
now = timezone.now()
start, end = now - timedelta(minutes=20), now - timedelta(minutes=5)
viewers = Viewer.objects.bulk_create([Viewer(device_id=f"dev{i}", platform_merchant="m", platform_user_id=f"dev{i}")
                                      for i in range(2300)])
ViewerSession.objects.bulk_create([
    ViewerSession(room=room, viewer=v, joined_at=start - timedelta(minutes=1), last_seen_at=end, left_at=end)
    for v in viewers])
ViewerSession.objects.create(room=room, viewer=Viewer.objects.create(device_id="brief", platform_merchant="m",
                                                                      platform_user_id="brief"), joined_at=start,
                             last_seen_at=start + timedelta(seconds=30), left_at=start + timedelta(seconds=30))
budget = Budget.objects.create(name="b", total_fen=10**8, per_viewer_cap_fen=1000, approval_threshold_fen=10**8)
campaign = services.create_campaign(actor=operator, room=room, budget=budget, kind="coupon", amount_fen=200,
                                    window_start=start, window_end=end, min_overlap_s=60)
services.issue_campaign(actor=operator, campaign_id=campaign.pk, batch_size=1000)
deadline = time.monotonic() + 60
while Campaign.objects.get(pk=campaign.pk).status == "issuing" and time.monotonic() < deadline:
    time.sleep(0.1)
# A replayed batch does nothing (campaign finished), and re-inserting its grants inserts nothing either.
first = IssuanceBatch.objects.filter(campaign=campaign).first()
assert services.run_batch(first.pk) is None
replayed = services._insert_grants(campaign, [v.pk for v in viewers], 200)
campaign.refresh_from_db()

# A lottery (draw at once, in-process) and a red packet claimed twice by the same viewer.
lottery = services.create_campaign(actor=operator, room=room, budget=budget, kind="lottery", amount_fen=500,
                                   winner_count=5, window_start=start, window_end=end)
services.issue_campaign(actor=operator, campaign_id=lottery.pk)
deadline = time.monotonic() + 30
while Campaign.objects.get(pk=lottery.pk).status == "issuing" and time.monotonic() < deadline:
    time.sleep(0.1)
lottery.refresh_from_db()
packet = services.create_campaign(actor=operator, room=room, budget=budget, kind="red_packet", amount_fen=1000,
                                  share_count=4, share_cap_fen=500, window_start=start, window_end=end, countdown_s=60)
services.issue_campaign(actor=operator, campaign_id=packet.pk)
claims = [services.claim_red_packet(campaign_id=packet.pk, viewer=v).amount_fen for v in viewers[:5]
          if not (v is viewers[4])]
again = services.claim_red_packet(campaign_id=packet.pk, viewer=viewers[0]).amount_fen
packet.refresh_from_db()
budget.refresh_from_db()
print(json.dumps({
    "lottery": [lottery.status, len(lottery.winners), services.draw_verification(lottery)["ok"]],
    "packet": [packet.status, sum(claims), again == claims[0], packet.issued_fen],
    "status": campaign.status, "eligible": campaign.eligible_count, "issued": campaign.issued_count,
    "grants": Grant.objects.filter(campaign=campaign).count(),
    "distinct": Grant.objects.filter(campaign=campaign).values("viewer").distinct().count(),
    "reserved": budget.reserved_fen - 5 * 500 - 1000, "replayed": replayed,
    "batches": IssuanceBatch.objects.count(),
}))
