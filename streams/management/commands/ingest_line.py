from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from streams.demo import demo_publish_token
from streams.models import IngestLine
from streams.rtmp_ingest_services import do_set_line_kind


class Command(BaseCommand):
    help = ("Show or change how a line's encoder publishes: WHIP (to /whip/<room>/<line>) or RTMP (to the ingest "
            "edge with the stream key <room>.<line>.<token>). Changes are made as --user (ops or tech support) "
            "and audited.")

    def add_arguments(self, parser):
        parser.add_argument("room")
        parser.add_argument("line", choices=IngestLine.Role.values)
        parser.add_argument("--kind", choices=IngestLine.Kind.values)
        parser.add_argument("--new-key", action="store_true", help="issue a new publish key (shown once)")
        parser.add_argument("--user", help="who makes the change (needs the edit_ingest_lines capability)")
        parser.add_argument("--host", default="127.0.0.1", help="the edge's address as encoders reach it")

    def handle(self, *args, room, line, kind, new_key, user, host, **options):
        row = IngestLine.objects.select_related("room").filter(room__slug=room, role=line).first()
        if row is None:
            raise CommandError(f"no room {room!r} with a {line} line")
        raw = None
        if kind or new_key:
            actor = get_user_model().objects.filter(username=user or "").first()
            if actor is None:
                raise CommandError("changes need --user <username> of someone in ops or tech support")
            try:
                row, raw = do_set_line_kind(user=actor, line=row, kind=kind or row.kind, new_key=new_key)
            except PermissionDenied:
                raise CommandError(f"{actor.username} may not edit ingest lines (ops or tech support may)") from None
        if raw is None and row.check_token(demo_publish_token(room, line)):
            raw = demo_publish_token(room, line)  # the demo's keys are derived, not secret
        self.stdout.write(f"{row}: {row.get_kind_display()}")
        token = raw or f"<the line's publish token, …{row.token_hint}>"
        if row.kind == IngestLine.Kind.RTMP:
            self.stdout.write(f"  OBS server:  rtmp://{host}:{settings.RTMP_INGEST_PORT}/ingest")
            self.stdout.write(f"  stream key:  {room}.{line}.{token}")
        else:
            self.stdout.write(f"  WHIP URL:    http://{host}:8000/whip/{room}/{line}   bearer token: {token}")
