"""Shared fixtures: personas per role, demo rooms, and a real Daphne server.

Personas: operator (ops), floor_assistant (floor_control), tech_support, manager, outsider (no role).
The suite runs against real PostgreSQL and Redis (DATABASE_URL / REDIS_URL, see README).
"""

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
PASSWORD = "correct-horse-battery"

# Browser tests drive Debian's chromium (never a downloaded browser). The flags keep it off the network:
# this machine reaches no host but loopback.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(autouse=True, scope="session")
def no_gc_pause_warnings_in_the_test_process():
    """Importing controlroom.asgi tunes the collector as for a web server and logs slow collections; the test
    process is not one (its log stream is closed at exit), the Daphne processes the tests start are."""
    from controlroom.gc_tuning import unwatch_pauses

    unwatch_pauses()
    yield
    unwatch_pauses()


@pytest.fixture(autouse=True)
def fresh_signalling_limits():
    """Every test's clients are 127.0.0.1: one test's (or run's) requests must not spend the next one's budget."""
    from streams import client_limits

    client_limits.reset()
    yield


@pytest.fixture(autouse=True)
def default_language_after_each_test():
    """A test client request in English leaves English active in this thread; the next test expects the default."""
    from django.utils import translation

    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def channel_layer_per_test(request):
    """Every test gets its own channel-layer instance, and its queued broadcasts are out before the next test.

    Each async test runs on its own event loop, but `get_channel_layer()` returns one object per process.
    channels_redis keeps asyncio locks on that object (the receive lock and per-channel clean-up locks)
    which bind to the loop of the first receive that had to wait for them. A test ending while one of
    them is held poisoned every later test's receives ("Lock ... is bound to a different event loop").
    Production has one loop per process; tests get one layer per loop. An instance's Redis pools close
    with the loop that opened them (channels_redis wraps `loop.close`).

    `send_to_group` returns before the message is out: a test's last pushes must not reach the next
    test's sockets (room slugs repeat across tests)."""
    from channels import DEFAULT_CHANNEL_LAYER
    from channels.layers import channel_layers

    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
    yield
    from streams import events

    if not events.flush_sends():
        warnings.warn(f"{request.node.nodeid}: broadcasts still queued after 5 s", stacklevel=1)
    sender = events._sender
    if sender["pid"] == os.getpid() and sender["layer"] is not None:
        # The sender thread's private instance is replaced with the next test's layer: close its pools
        # on the sender's loop, which outlives the test.
        asyncio.run_coroutine_threadsafe(sender["layer"].close_pools(), sender["loop"]).result(5)
    layer = channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
    pending = getattr(layer, "receive_count", 0)
    if pending:
        warnings.warn(f"{request.node.nodeid} left {pending} channel-layer receive(s) pending", stacklevel=1)


@pytest.fixture(autouse=True)
def no_database_connection_outlives_its_test():
    """Threads that outlive a test keep their Django connection (checked out of the pool) unless told:
    asgiref's single thread for an async test's sync_to_async calls, the media bridge's database thread.
    The next test then ran on a connection opened for the previous one."""
    yield
    from asgiref.sync import SyncToAsync
    from django.db import connections

    executors = [SyncToAsync.single_thread_executor]
    bridge = sys.modules.get("streams.mediaworker.bridge")
    if bridge is not None:
        executors += [bridge._db_executor, bridge._lease_executor]
    for executor in executors:
        executor.submit(connections.close_all).result(timeout=30)


def _make_user(django_user_model, username, role):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user(username=username, password=PASSWORD)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def operator(db, django_user_model):
    return _make_user(django_user_model, "olivia_ops", "ops")


@pytest.fixture
def floor_assistant(db, django_user_model):
    return _make_user(django_user_model, "fiona_floor", "floor_control")


@pytest.fixture
def tech_support(db, django_user_model):
    return _make_user(django_user_model, "tom_tech", "tech_support")


@pytest.fixture
def manager(db, django_user_model):
    return _make_user(django_user_model, "mia_manager", "manager")


@pytest.fixture
def outsider(db, django_user_model):
    return _make_user(django_user_model, "oscar_outsider", None)


@pytest.fixture
def room(db):
    """A live room with primary and backup lines; raw publish tokens on room.tokens."""
    from streams.models import IngestLine, LiveRoom

    room = LiveRoom.objects.create(name="测试直播间", slug="test-room", merchant="测试商家", host_name="小测",
                                   status=LiveRoom.Status.LIVE)
    room.tokens = {}
    for role in IngestLine.Role.values:
        line = IngestLine(room=room, role=role)
        room.tokens[role] = line.set_token()
        line.save()
    return room


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=30.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def database_url_for(settings_dict):
    """DATABASE_URL of the test database pytest-django created (so subprocesses share it)."""
    return "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(
        USER=settings_dict.get("USER") or "postgres",
        HOST=settings_dict.get("HOST") or "127.0.0.1",
        PORT=settings_dict.get("PORT") or 5432,
        NAME=settings_dict["NAME"],
    )


@pytest.fixture
def subprocess_env(transactional_db):
    """Environment for a child process (daphne, celery, mediaworker) sharing the test database."""
    from django.db import connection

    env = dict(os.environ)
    env["DATABASE_URL"] = database_url_for(connection.settings_dict)
    env.setdefault("DEBUG", "1")
    env["PYTHONPATH"] = str(ROOT)
    return env


@contextlib.contextmanager
def running_daphne(env, log_name=None):
    """Run a real Daphne serving controlroom.asgi on a free loopback port; yields its base URL.

    Its output goes to test-artifacts/<log_name> (default daphne-<port>.log)."""
    port = free_port()
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    with open(artifacts / (log_name or f"daphne-{port}.log"), "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "controlroom.asgi:application"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(port, proc=proc)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def daphne_server(subprocess_env):
    """A real Daphne on the shared test database; yields its base URL."""
    with running_daphne(subprocess_env) as url:
        yield url
