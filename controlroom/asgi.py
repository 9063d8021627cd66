import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlroom.settings")
django_asgi_app = get_asgi_application()  # populate apps before importing consumers

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from django.conf import settings  # noqa: E402

from .gc_tuning import tune_for_many_sockets  # noqa: E402
from .shutdown import exit_promptly_after_server_stops  # noqa: E402
from .routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

# Last, once the application is built: a web process holds thousands of sockets (see gc_tuning).
tune_for_many_sockets(settings.GC_THRESHOLDS, settings.GC_PAUSE_WARNING_MS)
# SIGTERM: out within seconds even if requests were in flight (see shutdown.py).
exit_promptly_after_server_stops()
if settings.EMBEDDED:
    # No Celery beat on the embedded default: the data-lifecycle jobs run from a thread of this process.
    from streams.retention import start_in_process_scheduler

    start_in_process_scheduler()
