from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from compensation import services
from streams.models import LiveRoom


class Command(BaseCommand):
    help = ("Register a merchant's shop for the coupon API and print its bearer token (shown once). "
            "The token sees only that merchant's coupons, campaigns and rooms.")

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--merchant", required=True, help="the merchant name as written on its rooms")
        parser.add_argument("--shop-url", default="", help="where its coupons are spent (viewers' 去使用 link)")

    def handle(self, *args, name, merchant, shop_url="", **options):
        merchant = merchant.strip()
        if not LiveRoom.objects.filter(merchant=merchant).exists():
            raise CommandError(f"no room belongs to merchant {merchant!r}; check the spelling on the room")
        try:
            client, raw = services.create_shop_client(name, merchant, shop_url)
        except services.CompensationError as exc:
            raise CommandError(exc.messages[0]) from None
        except IntegrityError:
            raise CommandError(f"a shop named {name!r} is already registered") from None
        self.stdout.write(f"shop {client.name!r} ({client.merchant}): Authorization: Bearer {raw}")
