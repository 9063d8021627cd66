"""Real PostgreSQL + Redis + a real Celery worker (and Daphne for the live progress bar).

The story: an operator issues coupons to 20,000 viewers; the worker is killed with SIGKILL in the
middle of a batch; a new worker starts; the sweeper re-queues what was lost. Every viewer ends with exactly one
grant, the budget is never exceeded, and the progress bar on the campaign page only ever moves forward
and ends at the database count.
"""

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from django.db.models import Max, Sum

from compensation import services
from compensation.models import Budget, Campaign, Grant, IssuanceBatch, Recipient

from .conftest import present_during

ROOT = Path(__file__).resolve().parents[2]
VIEWERS = 20_000
AMOUNT = 300

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")]


def drop_stale_tasks(redis_url):
    """Empty Celery's queue (tasks of earlier runs point at other databases); nothing else is touched."""
    import redis

    redis.Redis.from_url(redis_url).delete("celery", "unacked", "unacked_index", "unacked_mutex")


def start_worker(env, log_name):
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    log = open(artifacts / log_name, "w")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "controlroom", "worker", "--concurrency", "2", "--pool", "prefork",
         "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def kill_hard(proc):
    """SIGKILL the worker and its pool children (a machine losing power, not a polite shutdown)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            kill_hard(proc)


@pytest.fixture
def worker_env(subprocess_env):
    drop_stale_tasks(os.environ["REDIS_URL"])
    env = dict(subprocess_env)
    env["COMPENSATION_STUCK_AFTER_S"] = "3"     # production: 60 s
    env["COMPENSATION_SWEEP_INTERVAL_S"] = "1"
    return env


class ProgressWatcher(threading.Thread):
    """A browser-like websocket client on the campaign page's progress channel."""

    def __init__(self, url, cookie, origin):
        super().__init__(daemon=True)
        self.url, self.cookie, self.origin = url, cookie, origin
        self.frames, self.stop_event, self.connected = [], threading.Event(), threading.Event()

    def run(self):
        from websockets.sync.client import connect

        with connect(self.url, additional_headers={"Cookie": self.cookie, "Origin": self.origin},
                     open_timeout=20) as ws:
            self.connected.set()
            while not self.stop_event.is_set():
                try:
                    message = ws.recv(timeout=0.5)
                except TimeoutError:
                    continue
                done = re.search(r'data-done="(\d+)"', message)
                status = re.search(r'data-status="(\w+)"', message)
                if done and status:
                    self.frames.append((int(done.group(1)), status.group(1)))


@contextlib.contextmanager
def freeze_issuance(campaign_id):
    """Hold the campaign row FOR UPDATE in a second connection; batches block on their FOR SHARE."""
    with psycopg.connect(**connection.get_connection_params()) as side:
        side.execute("SELECT 1 FROM compensation_campaign WHERE id = %s FOR UPDATE", [campaign_id])
        yield
        side.rollback()


def blocked_batches():
    """Backends of this database waiting on a row lock (the worker's batches, frozen)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND wait_event_type = 'Lock' AND query LIKE %s", ["%compensation_campaign%FOR SHARE%"])
        return cursor.fetchone()[0]


def login_cookie(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def test_issue_to_20000_viewers_survives_a_killed_worker_without_duplicates_or_gaps(
        worker_env, daphne_server, operator, room, outage):
    budget = Budget.objects.create(name="大促补偿", total_fen=VIEWERS * AMOUNT + 50_000, per_viewer_cap_fen=1_000,
                                   approval_threshold_fen=10**9)
    ids = present_during(room, outage, VIEWERS)
    campaign = services.create_campaign(actor=operator, room=room, budget=budget, incident=outage,
                                        kind=Campaign.Kind.COUPON, amount_fen=AMOUNT)
    assert campaign.eligible_count == VIEWERS

    watcher = ProgressWatcher(daphne_server.replace("http", "ws") + f"/ws/compensation/campaigns/{campaign.pk}/",
                              login_cookie(operator), daphne_server)
    watcher.start()
    assert watcher.connected.wait(20)

    worker = start_worker(worker_env, "celery-compensation-1.log")
    try:
        services.issue_campaign(actor=operator, campaign_id=campaign.pk, batch_size=250)  # 80 batches
        batches = IssuanceBatch.objects.filter(campaign=campaign)
        deadline = time.monotonic() + 90
        while batches.filter(status="done").count() < 8:
            assert time.monotonic() < deadline, "the worker issued nothing"
            assert worker.poll() is None, "the worker died by itself"
            time.sleep(0.02)
        # Freeze the worker mid-batch: hold the campaign row FOR UPDATE from another connection, so the
        # batches it is running wait inside their transactions (their tasks unacknowledged), then kill it.
        # The kill therefore always loses work that only the sweeper can recover.
        with freeze_issuance(campaign.pk):
            deadline = time.monotonic() + 30
            while blocked_batches() < 1:
                assert time.monotonic() < deadline, "no batch ever waited on the campaign lock"
                time.sleep(0.02)
            kill_hard(worker)
        done_at_kill = batches.filter(status="done").count()
        assert done_at_kill < batches.count(), "the worker finished before it could be killed"
        campaign.refresh_from_db()
        assert campaign.status == "issuing"
        # Whatever died mid-batch rolled back whole: done batches and grants agree exactly.
        assert Grant.objects.filter(campaign=campaign).count() == \
            batches.filter(status="done").aggregate(n=Sum("granted_count"))["n"]

        # Let the unfinished batches age past COMPENSATION_STUCK_AFTER_S (3 s here), so the restarted
        # worker's sweeper must re-queue them (tasks the killed worker held are not redelivered for 300 s).
        time.sleep(3.5)
        worker = start_worker(worker_env, "celery-compensation-2.log")
        deadline = time.monotonic() + 90
        while True:
            campaign.refresh_from_db()
            budget.refresh_from_db()
            assert budget.reserved_fen <= budget.total_fen
            if campaign.status != "issuing":
                break
            assert time.monotonic() < deadline, f"stuck at {batches.filter(status='done').count()}/80 batches"
            time.sleep(0.1)
        # The final frame is pushed right after the completing commit: give it a moment to arrive.
        deadline = time.monotonic() + 10
        while (VIEWERS, "completed") not in watcher.frames and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop(worker)

    assert campaign.status == "completed"
    grants = Grant.objects.filter(campaign=campaign)
    assert grants.count() == VIEWERS == campaign.issued_count
    assert grants.values("viewer_id").distinct().count() == VIEWERS        # no duplicate
    assert set(grants.values_list("viewer_id", flat=True)) == set(ids)      # no one missing
    assert set(Recipient.objects.filter(campaign=campaign).values_list("viewer_id", flat=True)) == set(ids)
    assert batches.aggregate(m=Max("attempts"))["m"] >= 2                    # the sweeper re-queued lost work
    budget.refresh_from_db()
    assert budget.reserved_fen == campaign.issued_fen == VIEWERS * AMOUNT <= budget.total_fen

    # The live bar: forward only, and it ends at the database count.
    watcher.stop_event.set()
    watcher.join(5)
    assert len(watcher.frames) >= 5
    assert (VIEWERS, "completed") in watcher.frames
    assert all(done <= VIEWERS for done, _ in watcher.frames)
    # What the page shows, applying the client's rule (static/js/compensation-progress.js): a frame
    # with fewer done items, or an "issuing" frame after the final one, is dropped.
    shown = []
    for done, status in watcher.frames:
        if shown and (done < shown[-1][0] or (shown[-1][1] == "completed" and status != "completed")):
            continue
        shown.append((done, status))
    assert [d for d, _ in shown] == sorted(d for d, _ in shown)
    assert shown[-1] == (VIEWERS, "completed")
    assert len(shown) >= 3  # it really moved: several intermediate values reached the page


def test_progress_socket_refuses_outsiders(daphne_server, outsider, operator, room, outage, budget):
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

    campaign = services.create_campaign(actor=operator, room=room, budget=budget, incident=outage,
                                        kind=Campaign.Kind.COUPON, amount_fen=100)
    url = daphne_server.replace("http", "ws") + f"/ws/compensation/campaigns/{campaign.pk}/"
    with pytest.raises((ConnectionClosed, InvalidStatus)):
        with connect(url, additional_headers={"Cookie": login_cookie(outsider), "Origin": daphne_server},
                     open_timeout=20) as ws:
            ws.recv(timeout=5)
    with pytest.raises(InvalidStatus):  # foreign origin: refused at the handshake
        with connect(url, additional_headers={"Cookie": login_cookie(operator), "Origin": "http://evil.example"},
                     open_timeout=20):
            pass
    with connect(url, additional_headers={"Cookie": login_cookie(operator), "Origin": daphne_server},
                 open_timeout=20) as ws:
        assert f'id="campaign-progress-{campaign.pk}"' in ws.recv(timeout=10)  # snapshot on connect
