from django.core.management.base import BaseCommand, CommandError

from streams.models import LiveRoom
from streams.viewer_identity import create_key


class Command(BaseCommand):
    help = ("Create (or rotate) a merchant's key for platform-signed viewer tokens and print it once "
            "(docs/integrators.md). Rotating invalidates every token signed with the old key.")

    def add_arguments(self, parser):
        parser.add_argument("merchant", help="the merchant name as written on its rooms")

    def handle(self, *args, merchant, **options):
        merchant = merchant.strip()
        if not merchant or not LiveRoom.objects.filter(merchant=merchant).exists():
            raise CommandError(f"no room belongs to merchant {merchant!r}; check the spelling on the room")
        self.stdout.write(f"merchant {merchant!r}: viewer token key {create_key(merchant)}")
