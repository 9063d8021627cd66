"""Embedded default: /healthz reports the in-process media engine truthfully (idle, answering, stuck)."""

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_embedded_healthz_follows_the_in_process_engine(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["SQLITE_PATH"] = str(tmp_path / "embedded.sqlite3")
    run = subprocess.run([sys.executable, str(HERE / "embedded_health_run.py")], env=env, capture_output=True,
                         text=True, timeout=180, cwd=HERE.parents[1])
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    status, media = result["idle"]
    assert status == 200 and media["engine"] == "idle"
    status, media = result["running"]
    assert status == 200 and media["engine"] == "running" and media["loop_lag_ms"] < 1000
    status, media = result["stuck"]
    assert status == 503 and media["ok"] is False and "did not answer" in media["error"]
    status, media = result["recovered"]
    assert status == 200 and media["ok"] is True
