from django.conf import settings
from django.core.management.base import BaseCommand

from streams import rtmp_edge


class Command(BaseCommand):
    help = ("Write the RTMP ingest edge's nginx config (nginx + libnginx-mod-rtmp) into a folder; start it with "
            "`nginx -c <folder>/nginx.conf -p <folder>`. Prints the config's path.")

    def add_arguments(self, parser):
        parser.add_argument("--dir", required=True, help="runtime folder for the config, pid and logs")
        parser.add_argument("--callback", default="http://127.0.0.1:8000",
                            help="base URL of the product's web server (the edge's on_publish callbacks)")
        parser.add_argument("--listen", default="127.0.0.1",
                            help="address encoders reach the ingest on (0.0.0.0 for encoders on other machines)")
        parser.add_argument("--ingest-port", type=int, default=settings.RTMP_INGEST_PORT)
        parser.add_argument("--platform-port", type=int, default=settings.RTMP_PLATFORM_PORT)
        parser.add_argument("--allow-play", action="append", default=None,
                            help="address of a media worker allowed to pull lines (repeatable; default 127.0.0.1)")

    def handle(self, *args, **options):
        if not rtmp_edge.available():
            self.stderr.write("nginx with the RTMP module is not installed: apt-get install nginx libnginx-mod-rtmp")
        conf = rtmp_edge.write_config(
            options["dir"], callback=options["callback"], listen=options["listen"],
            ingest_port=options["ingest_port"], platform_port=options["platform_port"],
            allow_play=tuple(options["allow_play"] or ("127.0.0.1",)), secret=settings.RTMP_EDGE_SECRET)
        self.stdout.write(str(conf))
