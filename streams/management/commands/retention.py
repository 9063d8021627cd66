"""Run a data-lifecycle job now: `manage.py retention nightly` (or downsample, partitions, prune, archive_audit).

Celery beat (or the embedded default's in-process scheduler) runs them on schedule; this is for operators
and for resuming by hand. Safe to interrupt and to run again.
"""

import json

from django.core.management.base import BaseCommand

from streams import retention


class Command(BaseCommand):
    help = "Run a data-lifecycle job now (idempotent, resumable)."

    def add_arguments(self, parser):
        parser.add_argument("job", choices=sorted(retention.JOBS))

    def handle(self, *args, job, **options):
        report = retention.JOBS[job]()
        self.stdout.write(json.dumps(report, ensure_ascii=False, default=str))
