"""SIGTERM → exit time of each process, with real work in flight (target ≤ 5 s each).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cr_bench REDIS_URL=redis://127.0.0.1:6379/5 \\
        .venv/bin/python bench/shutdown_bench.py [--repeat 3] [--warm 10]

Process mode (DATABASE_URL + REDIS_URL): Daphne, `manage.py mediaworker` and a Celery worker (with beat) run
as in production; simulated WHIP publishers feed two demo rooms and 20 viewer sockets are open. Then each
process gets SIGTERM in turn: the media worker first (its leases must be gone when it exits), Celery, Daphne.
Embedded default (a temporary SQLite file, no Redis): one Daphne with the in-process media engine serving the
same publishers. Baseline in the same run: the same processes idle (no publishers, no sockets).
"""

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
ROOMS = "beauty-01,snacks-02"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=40.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing on port {port}")


def start(args, env, log):
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_and_time(proc, limit=30.0):
    """SIGTERM → seconds until exit (None if it had to be killed after `limit`)."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(limit)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: every thread's stack goes to the log
        time.sleep(1.0)
        proc.kill()
        proc.wait()
        return None
    return round(time.monotonic() - started, 2)


async def open_viewer_sockets(port, n):
    import websockets

    sockets = []
    slug = ROOMS.split(",")[0]
    for _ in range(n):
        sockets.append(await websockets.connect(f"ws://127.0.0.1:{port}/ws/live/{slug}/",
                                                origin=f"http://127.0.0.1:{port}"))
    return sockets


def leases_left(env):
    out = subprocess.run([PY, "manage.py", "shell", "-c",
                          "from streams.models import MediaWorkerLease as L; print(L.objects.count())"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    return int(out.stdout.strip().splitlines()[-1])


def publishers_on_air(env):
    code = ("from streams.models import IngestLine as L; "
            "print(L.objects.filter(room__slug__in=%r, state='connected').count())" % ROOMS.split(","))
    out = subprocess.run([PY, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    return int(out.stdout.strip().splitlines()[-1])


def run_once(env, *, mode, busy, warm, logdir, run=0):
    """Start the processes of `mode`, optionally put work in flight, SIGTERM each; {process: seconds}."""
    port = free_port()
    procs, extra, results = {}, [], {}
    logs = {name: open(logdir / f"shutdown-{mode}-{'busy' if busy else 'idle'}-{run}-{name}.log", "w")
            for name in ("daphne", "mediaworker", "celery", "simulator")}
    try:
        procs["daphne"] = start([PY, "-m", "daphne", "-e", f"tcp:port={port}:interface=127.0.0.1:backlog=1024",
                                 "controlroom.asgi:application"], env, logs["daphne"])
        if mode == "process":
            procs["mediaworker"] = start([PY, "manage.py", "mediaworker"], env, logs["mediaworker"])
            procs["celery"] = start([PY, "-m", "celery", "-A", "controlroom", "worker",
                                     "--loglevel=WARNING", "--concurrency=2"], env, logs["celery"])
        wait_for_port(port)
        if mode == "process":
            for _ in range(60):  # the worker holds the rooms before publishers arrive
                if leases_left(env) >= 6:
                    break
                time.sleep(0.5)
        loop = asyncio.new_event_loop()
        sockets = []
        if busy:
            extra.append(start([PY, "manage.py", "simulate_streams", "--url", f"http://127.0.0.1:{port}",
                                "--rooms", ROOMS], env, logs["simulator"]))
            sockets = loop.run_until_complete(open_viewer_sockets(port, 20))
        time.sleep(warm)
        if busy:
            results["publishers"] = publishers_on_air(env)
        if mode == "process":
            results["leases_before"] = leases_left(env)
            results["mediaworker"] = stop_and_time(procs.pop("mediaworker"))
            results["leases_after"] = leases_left(env)
            results["celery"] = stop_and_time(procs.pop("celery"))
        results["daphne"] = stop_and_time(procs.pop("daphne"))
        for ws in sockets:
            with contextlib.suppress(Exception):
                loop.run_until_complete(ws.close())
        loop.close()
    finally:
        for proc in (*procs.values(), *extra):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for log in logs.values():
            log.close()
    return results


def prepare(env):
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
    subprocess.run([PY, "manage.py", "seed_demo"], cwd=ROOT, env=env, check=True, timeout=300,
                   stdout=subprocess.DEVNULL)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warm", type=float, default=10.0, help="seconds of work before SIGTERM")
    parser.add_argument("--modes", default="process,embedded")
    parser.add_argument("--loads", default="idle,busy")
    args = parser.parse_args()
    logdir = ROOT / "test-artifacts"
    logdir.mkdir(exist_ok=True)
    base = {**os.environ, "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING", "PYTHONFAULTHANDLER": "1"}
    table = {}
    for mode in args.modes.split(","):
        if mode == "process":
            if not (base.get("DATABASE_URL") and base.get("REDIS_URL")):
                print("process mode needs DATABASE_URL and REDIS_URL; skipped")
                continue
            env = dict(base)
        else:
            env = {k: v for k, v in base.items() if k not in ("DATABASE_URL", "REDIS_URL")}
            env["SQLITE_PATH"] = str(Path(tempfile.mkdtemp(prefix="shutdown-bench-")) / "db.sqlite3")
        prepare(env)
        for busy in [load == "busy" for load in args.loads.split(",")]:
            for run in range(args.repeat):
                result = run_once(env, mode=mode, busy=busy, warm=args.warm, logdir=logdir, run=run)
                print(mode, "busy" if busy else "idle", result, flush=True)
                for name, value in result.items():
                    table.setdefault((mode, busy, name), []).append(value)
    print()
    print("| mode | load | process | SIGTERM → exit (s), each run | worst |")
    print("|---|---|---|---|---|")
    for (mode, busy, name), values in table.items():
        if name.startswith("leases") or name == "publishers":
            continue
        shown = ", ".join("killed" if v is None else f"{v:.2f}" for v in values)
        worst = "killed" if None in values else f"{max(values):.2f}"
        print(f"| {mode} | {'2 rooms publishing, 20 viewer sockets' if busy else 'idle (baseline)'} | {name} "
              f"| {shown} | {worst} |")
    for (mode, busy, name), values in table.items():
        if name == "leases_after":
            before = table[(mode, busy, "leases_before")]
            print(f"leases held before SIGTERM ({mode}, {'busy' if busy else 'idle'}): {before}; "
                  f"left after the media worker exited: {values}")
    if any(None in v or (k[2] in ("daphne", "mediaworker", "celery") and max(v) > 5.0) for k, v in table.items()):
        print("SOME PROCESS TOOK LONGER THAN 5 s")
        sys.exit(1)


if __name__ == "__main__":
    main()
