from django.apps import AppConfig
from django.db.models.signals import post_migrate


class IncidentsConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'incidents'

    def ready(self):
        from . import receivers  # noqa: F401  (connects the streams signal subscribers)
        from .seed import seed_after_migrate
        from .wall import register_wall_hooks

        # Types and runbooks exist after every migrate and every test-database flush.
        post_migrate.connect(seed_after_migrate, sender=self, dispatch_uid="incidents.seed_types")
        register_wall_hooks()
        from streams import hooks

        from .selectors import retention_holds

        hooks.register_retention_holds(retention_holds)  # an open case's window is never pruned
