"""Re-queue stuck issuance batches, complete finished campaigns, close due draws and red packets.

Workers already sweep every COMPENSATION_SWEEP_INTERVAL_S (see tasks.start_sweeper); this runs it
by hand or as a separate loop (--loop)."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand

from compensation import services


class Command(BaseCommand):
    help = "Run the compensation sweeper once (or forever with --loop)."

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true")

    def handle(self, *args, loop=False, **options):
        while True:
            requeued = services.sweep()
            self.stdout.write(f"re-queued {len(requeued)} batches")
            if not loop:
                return
            time.sleep(settings.COMPENSATION_SWEEP_INTERVAL_S)
