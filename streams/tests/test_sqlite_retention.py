"""The embedded default prunes with bounded batched deletes and keeps what an open incident needs."""

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_sqlite_prunes_in_batches_and_keeps_an_open_case(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(SQLITE_PATH=str(tmp_path / "embedded.sqlite3"), RETENTION_BATCH_ROWS="100", RETENTION_PAUSE_MS="0",
               LOG_LEVEL="WARNING")
    run = subprocess.run([sys.executable, str(HERE / "sqlite_retention_run.py")], env=env, capture_output=True,
                         text=True, timeout=240, cwd=HERE.parents[1])
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["partitions"] == {"partitioned": False}
    assert result["held"] == [360, 250, 250, 60]  # the unreviewed incident's room: all kept (and summarised)
    assert result["free"] == [0, 0, 0, 60]  # the other room: only its minute aggregates remain
    assert result["first"]["streams_healthsample"] == {"deleted_rows": 360}  # in batches of 100
    assert result["first"]["streams_viewersession"] == {"deleted_rows": 250}
    assert result["second"]["streams_chatmessage"] == {"deleted_rows": 0}  # twice: nothing more to do
