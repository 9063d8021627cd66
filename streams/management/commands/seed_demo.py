from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand
from django.db import transaction

from streams import rtmp_edge
from streams.demo import DEMO_ROOMS, DEMO_USERS, demo_publish_token, render_slate_png
from streams.models import IngestLine, LiveRoom, LiveSession, PushDestination, SlateAsset


class Command(BaseCommand):
    help = "Create demo rooms, lines, slates and one user per role. Safe to run again."

    @transaction.atomic
    def handle(self, *args, **options):
        User = get_user_model()
        for username, role, password in DEMO_USERS:
            user, _ = User.objects.get_or_create(username=username)
            user.set_password(password)
            user.is_staff = role == "manager"
            user.save()
            user.groups.set([Group.objects.get(name=role)])

        edge = rtmp_edge.available()
        stand_in = f"rtmp://127.0.0.1:{settings.RTMP_PLATFORM_PORT}/{rtmp_edge.PLATFORM_APP}"
        for index, (slug, name, merchant, host) in enumerate(DEMO_ROOMS):
            slate = SlateAsset.objects.filter(name=f"{name} 垫片").first()
            if slate is None:
                slate = SlateAsset(name=f"{name} 垫片", kind=SlateAsset.Kind.IMAGE)
                slate.file.save(f"demo-{slug}.png", ContentFile(render_slate_png(hue=index)), save=False)
                slate.save()
            room, created = LiveRoom.objects.update_or_create(
                slug=slug,
                defaults={"name": name, "merchant": merchant, "host_name": host, "slate": slate},
            )
            if room.status != LiveRoom.Status.LIVE:
                room.status = LiveRoom.Status.LIVE
                room.save(update_fields=["status"])
            if not LiveSession.objects.filter(room=room, ended_at__isnull=True).exists():
                LiveSession.objects.create(room=room, started_at=room.created_at)
            for role in IngestLine.Role.values:
                line, _ = IngestLine.objects.get_or_create(room=room, role=role)
                line.set_token(demo_publish_token(slug, role))
                line.save()
            # The stand-in platform on the local edge (scripts/run.sh starts it when nginx-rtmp is installed):
            # pushed only when it can run, so a machine without nginx shows no failing destinations.
            PushDestination.objects.update_or_create(
                room=room, url=stand_in, defaults={"platform": PushDestination.Platform.OTHER, "stream_key": slug,
                                                   "enabled": edge})

        self.stdout.write(self.style.SUCCESS(f"Demo ready: {len(DEMO_ROOMS)} live rooms with primary+backup lines."))
        if edge:
            self.stdout.write(f"Each room pushes its program to the stand-in platform {stand_in}/<room>.")
        else:
            self.stdout.write("nginx with the RTMP module is not installed: the demo rooms push nowhere and RTMP "
                              "ingest is off (apt-get install nginx libnginx-mod-rtmp).")
        self.stdout.write("Logins (username / password / role):")
        for username, role, password in DEMO_USERS:
            self.stdout.write(f"  {username:10} {password:22} {role}")
