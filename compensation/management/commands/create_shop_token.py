from django.core.management.base import BaseCommand

from compensation import services


class Command(BaseCommand):
    help = "Register a shop for the coupon redemption API and print its bearer token (shown once)."

    def add_arguments(self, parser):
        parser.add_argument("name")

    def handle(self, *args, name, **options):
        client, raw = services.create_shop_client(name)
        self.stdout.write(f"shop {client.name!r}: Authorization: Bearer {raw}")
