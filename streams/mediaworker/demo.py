"""Where the demo simulator's fault files live (under MEDIA_ROOT), for the web side and the command."""

from pathlib import Path

from django.conf import settings

from ..media import simulator


def fault_dir():
    return Path(settings.MEDIA_ROOT) / "demo-faults"


def write_fault(room_slug, line_role, fault, duration_s=None):
    simulator.write_fault(fault_dir(), room_slug, line_role, fault, duration_s)


def read_fault(room_slug, line_role):
    return simulator.read_fault(fault_dir(), room_slug, line_role)
