from django.apps import AppConfig
from django.db.models.signals import post_migrate


class StreamsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "streams"

    def ready(self):
        from controlroom.roles import sync_role_groups

        # After every migrate (and every test-database flush) the role groups exist.
        post_migrate.connect(sync_role_groups, dispatch_uid="controlroom.sync_role_groups")
