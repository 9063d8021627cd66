"""The embedded default (SQLite file, no Redis): the same services issue in an in-process worker."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.slow
def test_embedded_default_issues_coupons_in_process_without_copy(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["SQLITE_PATH"] = str(tmp_path / "embedded.sqlite3")
    result = subprocess.run([sys.executable, str(HERE / "embedded_run.py")], env=env, capture_output=True,
                            text=True, timeout=120, cwd=HERE.parents[1])
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data.pop("lottery") == ["completed", 5, True]
    assert data.pop("packet") == ["completed", 1000, True, 1000]  # 4 shares, all claimed, one per viewer
    assert data == {"status": "completed", "eligible": 2300, "issued": 2300, "grants": 2300, "distinct": 2300,
                    "reserved": 2300 * 200, "replayed": 0, "batches": 3}
