"""Paging with the production layout: PostgreSQL + Redis + a real `celery worker` process delivers the
page, and after the platform answers 500 retries it with backoff (Celery countdown), no tick needed."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from incidents import paging, services
from incidents.models import PageDelivery

from .robot_receiver import RobotReceiver

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")]


@pytest.fixture
def worker(subprocess_env):
    import redis

    # Tasks of earlier runs point at other databases: empty Celery's queue (nothing else is touched).
    redis.Redis.from_url(os.environ["REDIS_URL"]).delete("celery", "unacked", "unacked_index", "unacked_mutex")
    env = dict(subprocess_env, PAGING_RETRY_BASE_S="1", LOG_LEVEL="WARNING")
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    with open(ROOT / "test-artifacts" / "paging-celery-worker.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "controlroom", "worker", "--concurrency", "1", "--pool", "prefork",
             "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)


def test_celery_worker_delivers_and_retries_after_a_500(worker, room, manager):
    with RobotReceiver(secrets={"dingtalk": "SEC-celery"}) as receiver:
        paging.save_robot(actor=manager, name="技术群", platform="dingtalk", secret="SEC-celery",
                          webhook_url=f"{receiver.base}/dingtalk?access_token=t", roles=["tech_support"])
        receiver.planned = [500]
        incident = services.open_incident(room=room, incident_type="stream-interruption", actor=None,
                                          source="line_down")
        got = receiver.wait_for(2, timeout=60)  # the worker starts, fails once, retries after ≈ 1 s
        assert all(r.signature_ok and not r.problems for r in got)
        assert got[1].at - got[0].at >= 0.9  # backoff, not at once
    deadline = time.monotonic() + 20
    delivery = PageDelivery.objects.get(incident=incident)
    while delivery.status != "sent" and time.monotonic() < deadline:
        time.sleep(0.1)
        delivery.refresh_from_db()
    assert delivery.status == "sent" and delivery.attempts == 2
    assert [(log.ok, log.http_status) for log in delivery.log.order_by("attempt")] == [(False, 500), (True, 200)]
