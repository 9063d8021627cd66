"""The embedded default's SQLite (WAL, busy timeout): a switch record refused with "database is locked" is
retried so the audit row and program_source follow the program; when it cannot land the operator is told."""

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_switch_records_survive_concurrent_writers_on_sqlite(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["SQLITE_PATH"] = str(tmp_path / "embedded.sqlite3")
    env["SQLITE_BUSY_TIMEOUT_S"] = "1"
    run = subprocess.run([sys.executable, str(HERE / "sqlite_switch_run.py")], env=env, capture_output=True,
                         text=True, timeout=240, cwd=HERE.parents[1])
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["journal_mode"] == "wal"
    assert "locked" in result["plain"]  # the lock was real: one attempt is refused...
    assert result["after_plain"] == ["primary", 0]  # ...and leaves nothing half-written
    assert result["after_retry"] == ["backup", 1]  # retried: audit row and program_source agree with viewers
    assert "观众已看到" in result["manual"] and "未能写入" in result["manual"]
    concurrent = result["concurrent"]
    assert concurrent["errors"] == []
    assert concurrent["probes"] == 60 and concurrent["alert_count"] == 60
    assert concurrent["program_source"] == "primary"
