import asyncio
import logging
import signal

from django.core.management.base import BaseCommand, CommandError

from streams.demo import DEMO_ROOMS, demo_publish_token


class Command(BaseCommand):
    help = ("Publish synthetic primary+backup lines for the demo rooms over WHIP (pre-encoded loops, "
            "320x180@15), or inject a fault: --inject beauty-01/primary/stall [--for 10].")

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Base URL of the web server.")
        parser.add_argument("--rooms", default="", help="Comma-separated room slugs (default: all demo rooms).")
        parser.add_argument("--lines", default="primary,backup")
        parser.add_argument("--duration", type=float, default=0, help="Stop after this many seconds (0 = until Ctrl-C).")
        parser.add_argument("--inject", default="", metavar="ROOM/LINE/FAULT",
                            help="Set a fault (stall, black, silence, weak, none) on a running simulator and exit.")
        parser.add_argument("--for", dest="for_s", type=float, default=None, help="Fault duration in seconds.")

    def handle(self, *args, url, rooms, lines, duration, inject, for_s, **options):
        from streams.media import simulator
        from streams.mediaworker import demo

        if inject:
            try:
                room, line, fault = inject.split("/")
                demo.write_fault(room, line, fault, for_s)
            except ValueError as exc:
                raise CommandError(f"--inject expects ROOM/LINE/FAULT with fault in {simulator.FAULTS}: {exc}")
            self.stdout.write(f"{room}/{line}: {fault}" + (f" for {for_s:g} s" if for_s else ""))
            return
        logging.getLogger("streams.media.simulator").setLevel(logging.INFO)
        wanted = [s for s in rooms.split(",") if s] or [slug for slug, *_ in DEMO_ROOMS]
        index_of = {slug: i for i, (slug, *_) in enumerate(DEMO_ROOMS)}
        roles = [r for r in lines.split(",") if r]
        from streams.mediaworker import ice

        ice.configure_from_settings()
        self.stdout.write(f"publishing {len(wanted)} rooms x {len(roles)} lines to {url} "
                          f"({simulator.DEMO_WIDTH}x{simulator.DEMO_HEIGHT}@{simulator.DEMO_FPS})")

        async def main():
            # Pre-encoding the clips keeps the loop busy for seconds: until the lines exist, SIGTERM keeps its
            # default action (exit at once) instead of waiting for a loop that cannot run the handler.
            sims = [simulator.SimulatedLine(url.rstrip("/"), slug, role, demo_publish_token(slug, role),
                                            index_of.get(slug, 0), demo.fault_dir())
                    for slug in wanted for role in roles]
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            if duration:
                loop.call_later(duration, stop.set)
            await asyncio.gather(*(sim.run(stop) for sim in sims))

        asyncio.run(main())
