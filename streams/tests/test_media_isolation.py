"""streams.media is the engine: it must import no Django (the Django side lives in streams.mediaworker)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import importlib, pkgutil, sys
import streams.media as media
names = [m.name for m in pkgutil.iter_modules(media.__path__)]
for name in names:
    importlib.import_module("streams.media." + name)
print(len(names))
print(",".join(sorted(k for k in sys.modules if k == "django" or k.startswith("django."))))
"""


def test_media_package_imports_no_django():
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}  # no DJANGO_SETTINGS_MODULE either
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    count, django_modules = out.stdout.strip().split("\n") + [""] * (2 - len(out.stdout.strip().split("\n")))
    assert int(count) >= 3  # engine, ice, simulator at least: the probe really walked the package
    assert django_modules == "", f"streams.media imported {django_modules}"
