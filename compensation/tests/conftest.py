from datetime import timedelta

import pytest
from django.utils import timezone


@pytest.fixture
def outage(room):
    """An incident on the test room: an outage of 10 minutes that ended 5 minutes ago."""
    from incidents.models import Incident, IncidentType

    incident_type, _ = IncidentType.objects.get_or_create(slug="stream-down", defaults={"name": "断流"})
    resolved = timezone.now() - timedelta(minutes=5)
    return Incident.objects.create(room=room, incident_type=incident_type, severity=2, title="主线路断流",
                                   status=Incident.Status.RESOLVED, detected_at=resolved - timedelta(minutes=10),
                                   resolved_at=resolved)


@pytest.fixture
def budget(db):
    from compensation.models import Budget

    return Budget.objects.create(name="直播事故补偿", total_fen=10_000_000, per_viewer_cap_fen=5_000,
                                 approval_threshold_fen=5_000_000)


def add_viewers(room, count, start, end, prefix="v"):
    """`count` identified viewers each present for the whole [start, end] in one session; returns their ids."""
    from streams.models import Viewer, ViewerSession

    # Identified by the room's merchant (imported or token-signed): only those are eligible by default.
    viewers = Viewer.objects.bulk_create([Viewer(device_id=f"{prefix}{i}", platform_merchant=room.merchant,
                                                 platform_user_id=f"{prefix}{i}") for i in range(count)],
                                         batch_size=5000)
    ViewerSession.objects.bulk_create(
        [ViewerSession(room=room, viewer=v, joined_at=start, last_seen_at=end, left_at=end) for v in viewers],
        batch_size=5000)
    return [v.pk for v in viewers]


def present_during(room, incident, count, prefix="v"):
    return add_viewers(room, count, incident.detected_at - timedelta(minutes=1),
                       incident.resolved_at + timedelta(minutes=1), prefix=prefix)


@pytest.fixture(autouse=True)
def default_language_after_each_test():
    """A request in English leaves English active in this thread; later tests expect the default (Chinese)."""
    from django.utils import translation

    yield
    translation.deactivate()


@pytest.fixture
def run_batches_inline(monkeypatch):
    """Run queued issuance batches right away, in this process, once the caller's transaction commits."""
    from django.db import transaction

    from controlroom import background

    monkeypatch.setattr(background, "enqueue",
                        lambda task, *args: transaction.on_commit(lambda: task.apply(args=args, throw=True)))
