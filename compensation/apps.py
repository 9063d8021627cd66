from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CompensationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "compensation"
    verbose_name = _("补偿")

    def ready(self):
        from . import signals

        signals.connect()  # lucky bag entries by comment keyword
        try:
            from streams import hooks
        except ImportError:
            hooks = None
        if hooks is not None and hasattr(hooks, "register_tile_badges"):
            from .selectors import wall_badges

            hooks.register_tile_badges(wall_badges)  # "补偿发放中 45%" on the room's wall tile
        if hooks is not None and hasattr(hooks, "register_viewer_panel"):
            from .panels import viewer_offers_panel, wall_progress_panel

            hooks.register_viewer_panel(viewer_offers_panel)  # join / grab buttons on /live/<slug>
            hooks.register_wall_panel(wall_progress_panel)  # progress bars above the wall's tiles
        if hooks is not None and hasattr(hooks, "register_retention_holds"):
            from .selectors import retention_holds

            hooks.register_retention_holds(retention_holds)  # a campaign's audience window until it closes
        # "You received ..." on the viewer page (streams asks its registered providers).
        try:
            from streams import viewer_notices
        except ImportError:  # the viewer page is not there yet
            return
        from .services import viewer_notices as provider

        viewer_notices.register(provider)
