"""Demo only (`make run`): put the demo users on duty around the clock so 值班与通知 shows who is on duty.
Adds nothing when a roster exists. Group robots are not seeded: they need a real chat group's webhook."""

from datetime import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from incidents.models import WEEKDAYS, DutyShift
from streams.demo import DEMO_USERS


class Command(BaseCommand):
    help = "Put the demo users on an all-day duty roster (only when the roster is empty)."

    def handle(self, *args, **options):
        if DutyShift.objects.exists():
            return
        users = {u.username: u for u in get_user_model().objects.filter(username__in=[n for n, *_ in DEMO_USERS])}
        DutyShift.objects.bulk_create([
            DutyShift(role=role, user=users[name], weekdays=WEEKDAYS, starts=time(0), ends=time(0))
            for name, role, _password in DEMO_USERS if name in users
        ])
