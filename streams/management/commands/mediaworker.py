import asyncio
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Run the aiortc media worker as its own process (needs REDIS_URL): ingest, program, failover, health."

    def add_arguments(self, parser):
        parser.add_argument("--worker-id", default=None, help="Stable id (default: host-pid).")
        parser.add_argument("--max-rooms", type=int, default=None, help="Serve at most this many rooms.")

    def handle(self, *args, worker_id=None, max_rooms=None, **options):
        if settings.MEDIA_WORKER_EMBEDDED:
            raise CommandError("REDIS_URL is not set: the media worker runs inside the web server (embedded mode).")
        from streams.mediaworker.worker import MediaWorker

        worker = MediaWorker(worker_id=worker_id, max_rooms=max_rooms)
        self.stdout.write(f"media worker {worker.worker_id} starting")

        async def main():
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await worker.run(stop)

        asyncio.run(main())
