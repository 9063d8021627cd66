"""One settings module, driven by the environment and validated at start.

Embedded default (no DATABASE_URL, no REDIS_URL): SQLite file, in-memory channel
layer, background work in-process, media worker inside the web server's loop.
With DATABASE_URL / REDIS_URL: PostgreSQL (psycopg 3), channels_redis, Celery on
Redis and a separate `manage.py mediaworker` process.
"""

import os
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from controlroom.gc_tuning import parse_thresholds as parse_gc_thresholds

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name, default):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use 1/0, true/false, yes/no or on/off.")


def env_int(name, default, minimum=None, maximum=None):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ImproperlyConfigured(f"{name}={value} is out of range [{minimum}, {maximum}].")
    return value


def env_list(name, default):
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG=0.")
    SECRET_KEY = "dev-insecure-only-for-the-embedded-default-" + "x" * 20
elif not DEBUG and len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters when DEBUG=0.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",  # runserver is ASGI too
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "template_partials",
    "streams",
    "incidents",
    "compensation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "controlroom.middleware.ChosenLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "controlroom.middleware.RefuseControlCharactersMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "controlroom.middleware.ErrorIdMiddleware",
    "controlroom.middleware.PublicErrorPagesMiddleware",
]

ROOT_URLCONF = "controlroom.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "controlroom.context_processors.roles",
                "streams.context_processors.alert_sidebar",
            ],
        },
    },
]

WSGI_APPLICATION = None
ASGI_APPLICATION = "controlroom.asgi.application"

# --- Database -----------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "").strip()
if DATABASE_URL:
    scheme = urlparse(DATABASE_URL).scheme
    if scheme not in ("postgres", "postgresql", "sqlite"):
        raise ImproperlyConfigured(
            f"DATABASE_URL scheme {scheme!r} is not supported; use postgres://user@host:port/dbname."
        )
    try:
        DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
    if scheme != "sqlite" and not DATABASES["default"].get("NAME"):
        raise ImproperlyConfigured("DATABASE_URL must name a database, e.g. postgres://postgres@127.0.0.1:5432/controlroom.")
    pool_size = env_int("DATABASE_POOL_MAX_SIZE", 20, 0, 1000)
    if scheme != "sqlite" and pool_size:
        # Django's psycopg pool. Without it every database_sync_to_async call (a wall click, a socket's
        # handshake, the hub's re-reads) opens a new PostgreSQL connection: ≈ 8 ms and a backend fork
        # on this 2-core machine, against 0.05 ms for the query itself. 0 turns it off (e.g. behind PgBouncer).
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {"min_size": 2, "max_size": pool_size, "timeout": 10}
        # The pool then checks each connection it hands out (one ≈ 0.05 ms round trip), so a PostgreSQL
        # restart costs no request an error.
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            # Several writers (web, in-process workers) share one file: WAL lets readers run beside the one
            # writer, IMMEDIATE takes the write lock up front, and a writer waits this long for it before
            # "database is locked" (writes that must land, like a switch record, are then retried).
            "OPTIONS": {"timeout": env_int("SQLITE_BUSY_TIMEOUT_S", 20, 1, 600), "transaction_mode": "IMMEDIATE",
                        "init_command": "PRAGMA journal_mode=WAL;"},
        }
    }
USES_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, Celery broker ---------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "").strip()
if REDIS_URL and urlparse(REDIS_URL).scheme not in ("redis", "rediss"):
    raise ImproperlyConfigured(f"REDIS_URL must start with redis:// or rediss://, got {REDIS_URL!r}.")
EMBEDDED = not REDIS_URL

CHANNEL_LAYER_PREFIX = os.environ.get("CHANNEL_LAYER_PREFIX", "controlroom")
# Redis pub/sub ignores the database number, so our pub/sub channel names carry it: a demo on db 0 and
# CI on db 9 of one Redis server then never see each other's health samples or viewer pushes.
PUBSUB_PREFIX = f"{CHANNEL_LAYER_PREFIX}:{urlparse(REDIS_URL).path.strip('/') or '0'}" if REDIS_URL else ""
if EMBEDDED:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        # redis-py 8 defaults socket_timeout to 5 s, which kills consumers
                        # blocking on BZPOPMIN (channels_redis#422): no read timeout.
                        "socket_timeout": None,
                        "socket_connect_timeout": 5,
                        "socket_keepalive": True,
                        "health_check_interval": 30,
                        # The asyncio pool's default cap (100) turns handshake bursts into 500s.
                        "max_connections": env_int("REDIS_MAX_CONNECTIONS", 1000, 10, 100000),
                    }
                ],
                "prefix": CHANNEL_LAYER_PREFIX,
                "capacity": 1000,
                "expiry": 30,
            },
        }
    }

# --- Paging (incidents/paging.py): SEV1/SEV2 incidents page the on-duty roles' group robots -------
# Not acknowledged within this many minutes: sent again and escalated to the manager on duty.
PAGING_ACK_MINUTES = env_int("PAGING_ACK_MINUTES", 5, 1, 24 * 60)
PAGING_MAX_ROUNDS = env_int("PAGING_MAX_ROUNDS", 4, 1, 100)  # pages per incident at most (first + re-sends)
PAGING_TICK_S = env_int("PAGING_TICK_S", 15, 1, 3600)  # how often due retries and escalations are looked for
PAGING_HTTP_TIMEOUT_S = env_int("PAGING_HTTP_TIMEOUT_S", 5, 1, 60)  # per webhook request
PAGING_MAX_ATTEMPTS = env_int("PAGING_MAX_ATTEMPTS", 4, 1, 20)  # per robot and page
PAGING_RETRY_BASE_S = env_int("PAGING_RETRY_BASE_S", 5, 0, 3600)  # backoff: base, 2 x base, 4 x base ...
PAGING_CLAIM_LINK_HOURS = env_int("PAGING_CLAIM_LINK_HOURS", 12, 1, 7 * 24)  # "I'm on it" links expire
# The address people open from a chat app: links in pages are absolute.
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").strip().rstrip("/")
if urlparse(SITE_URL).scheme not in ("http", "https") or not urlparse(SITE_URL).netloc:
    raise ImproperlyConfigured(f"SITE_URL={SITE_URL!r} must be an absolute http(s) address, e.g. https://ops.example.com.")

# Celery: real workers on Redis; on the embedded default tasks run in-process
# (eager) so the same service code runs without a broker.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = EMBEDDED
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 300}
CELERY_TIMEZONE = "Asia/Shanghai"
# Periodic safety nets (run one `celery beat`): long line outages become incidents even when
# no alert arrives. Stuck issuance batches are swept by every worker itself (compensation.tasks).
CELERY_BEAT_SCHEDULE = {
    "incidents-check-lines-down": {"task": "incidents.check_lines_down", "schedule": 30.0},
    # Paging: due delivery retries and SEV1/SEV2 pages nobody acknowledged (embedded: a thread does it).
    "incidents-paging-tick": {"task": "incidents.paging_tick", "schedule": float(PAGING_TICK_S)},
}

# --- Data lifecycle (streams/retention.py; README "Retention") ----------------------------
# How long each time-series or history table keeps its rows. Pruning never removes what an open case
# needs: rows of a room inside the window of an incident not yet reviewed, or of a compensation campaign
# not yet closed, stay (plus RETENTION_HOLD_MARGIN_MIN on either side) until the case closes.
RETENTION_HEALTH_RAW_DAYS = env_int("RETENTION_HEALTH_RAW_DAYS", 14, 2, 366)  # 10 s health samples
RETENTION_HEALTH_MINUTE_DAYS = env_int("RETENTION_HEALTH_MINUTE_DAYS", 400, 2, 3660)  # 1-minute min/mean/max
RETENTION_PRESENCE_DAYS = env_int("RETENTION_PRESENCE_DAYS", 180, 7, 3660)  # viewer sessions
RETENTION_CHAT_DAYS = env_int("RETENTION_CHAT_DAYS", 180, 7, 3660)  # chat messages
RETENTION_ALERT_DAYS = env_int("RETENTION_ALERT_DAYS", 400, 7, 3660)  # acknowledged alerts
RETENTION_HOST_CUE_DAYS = env_int("RETENTION_HOST_CUE_DAYS", 400, 7, 3660)
RETENTION_ANNOUNCEMENT_DAYS = env_int("RETENTION_ANNOUNCEMENT_DAYS", 400, 7, 3660)  # unpinned ones
# The audit log is never deleted: after this many days its rows move to the archive table
# (streams_controlactionarchive), which the audit page searches and exports as well.
RETENTION_AUDIT_HOT_DAYS = env_int("RETENTION_AUDIT_HOT_DAYS", 90, 7, 3660)
RETENTION_HOLD_MARGIN_MIN = env_int("RETENTION_HOLD_MARGIN_MIN", 60, 0, 24 * 60)
# PostgreSQL: daily partitions (pg_partman) are created this many days ahead.
RETENTION_PARTITION_PREMAKE_DAYS = env_int("RETENTION_PARTITION_PREMAKE_DAYS", 7, 2, 60)
# Pruning deletes (SQLite, unpartitioned tables) and archive moves go in batches of this many rows, one
# short transaction each, pausing RETENTION_PAUSE_MS between batches so live writers keep the lock.
RETENTION_BATCH_ROWS = env_int("RETENTION_BATCH_ROWS", 5000, 100, 1_000_000)
RETENTION_PAUSE_MS = env_int("RETENTION_PAUSE_MS", 20, 0, 60_000)
# The nightly pass (partitions, downsampling, pruning, archiving) runs at this Asia/Shanghai hour;
# downsampling also runs every RETENTION_DOWNSAMPLE_EVERY_S so aggregates stay near current.
RETENTION_NIGHTLY_HOUR = env_int("RETENTION_NIGHTLY_HOUR", 4, 0, 23)
RETENTION_DOWNSAMPLE_EVERY_S = env_int("RETENTION_DOWNSAMPLE_EVERY_S", 600, 60, 86400)
if RETENTION_HEALTH_MINUTE_DAYS < RETENTION_HEALTH_RAW_DAYS:
    raise ImproperlyConfigured(
        f"RETENTION_HEALTH_MINUTE_DAYS={RETENTION_HEALTH_MINUTE_DAYS} must be at least "
        f"RETENTION_HEALTH_RAW_DAYS={RETENTION_HEALTH_RAW_DAYS}: aggregates outlive the samples they summarise.")
if RETENTION_PARTITION_PREMAKE_DAYS >= RETENTION_HEALTH_RAW_DAYS:
    raise ImproperlyConfigured("RETENTION_PARTITION_PREMAKE_DAYS must be less than RETENTION_HEALTH_RAW_DAYS.")
CELERY_BEAT_SCHEDULE.update({
    # Every job is idempotent and resumes where a killed run stopped (streams/retention.py).
    "streams-retention-downsample": {"task": "streams.retention_downsample",
                                     "schedule": float(RETENTION_DOWNSAMPLE_EVERY_S)},
    "streams-retention-partitions": {"task": "streams.retention_partitions", "schedule": 3600.0},
    "streams-retention-nightly": {"task": "streams.retention_nightly",
                                  "schedule": crontab(hour=RETENTION_NIGHTLY_HOUR, minute=17)},
})

# --- Auth ----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- I18n / time -----------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("简体中文")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

# --- Static ----------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
# WhiteNoise serves static files under plain `daphne` too; in DEBUG straight from the finders.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", str(BASE_DIR / "mediafiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Media worker ------------------------------------------------------------------
# Explicit ICE configuration: aiortc falls back to a public STUN server when none is
# given, and aioice never gathers loopback by itself.
MEDIA_ICE_SERVERS = env_list("MEDIA_ICE_SERVERS", [])
MEDIA_HOST_ADDRESSES = env_list("MEDIA_HOST_ADDRESSES", ["127.0.0.1"])
MEDIA_WORKER_EMBEDDED = EMBEDDED
MEDIA_WORKER_LEASE_SECONDS = env_int("MEDIA_WORKER_LEASE_SECONDS", 10, 2, 600)
# RTMP push to the platforms: the program's push profile (encoded once per room with an enabled destination).
MEDIA_PUSH_WIDTH = env_int("MEDIA_PUSH_WIDTH", 1280, 160, 3840)
MEDIA_PUSH_HEIGHT = env_int("MEDIA_PUSH_HEIGHT", 720, 90, 2160)
MEDIA_PUSH_BITRATE = env_int("MEDIA_PUSH_BITRATE", 2_500_000, 100_000, 20_000_000)
# RTMP ingest: encoders publish rtmp://<edge>:RTMP_INGEST_PORT/ingest/<room>.<line>.<token> to the edge (nginx with
# libnginx-mod-rtmp, config from `manage.py rtmp_edge_config`); its on_publish/on_publish_done callbacks reach
# /rtmp/edge/... (loopback only, or anyone presenting RTMP_EDGE_SECRET); the media worker pulls accepted lines
# from RTMP_EDGE_PULL_URL. RTMP_PLATFORM_PORT is the demo's stand-in platform on the same edge.
RTMP_INGEST_PORT = env_int("RTMP_INGEST_PORT", 1935, 1, 65535)
RTMP_PLATFORM_PORT = env_int("RTMP_PLATFORM_PORT", 1936, 1, 65535)
RTMP_EDGE_PULL_URL = os.environ.get("RTMP_EDGE_PULL_URL", "").strip().rstrip("/") or (
    f"rtmp://127.0.0.1:{RTMP_INGEST_PORT}/ingest")
if not RTMP_EDGE_PULL_URL.startswith("rtmp://"):
    raise ImproperlyConfigured(f"RTMP_EDGE_PULL_URL={RTMP_EDGE_PULL_URL!r} must be an rtmp:// URL of the edge's ingest app.")
RTMP_EDGE_SECRET = os.environ.get("RTMP_EDGE_SECRET", "").strip()

# /metrics (Prometheus text) is not public data: with a token, scrapers send "Authorization: Bearer <token>";
# without one only loopback clients may read it.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "").strip()

# --- Public signalling (WHIP/WHEP): per-client limits (streams/client_limits.py) --------
# Counted per client address: REMOTE_ADDR, or the X-Forwarded-For entry added by one of these proxies.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])
SIGNALLING_BURST = env_int("SIGNALLING_BURST", 20, 1, 100000)  # requests at once per address
SIGNALLING_PER_MINUTE = env_int("SIGNALLING_PER_MINUTE", 60, 1, 1000000)  # then this many a minute
WHEP_SESSIONS_PER_CLIENT = env_int("WHEP_SESSIONS_PER_CLIENT", 8, 1, 100000)
WHEP_SESSIONS_PER_CLIENT_ROOM = env_int("WHEP_SESSIONS_PER_CLIENT_ROOM", 4, 1, 100000)
# Backstop: a counted session the client never ended and nobody checked is forgotten after this long.
WHEP_SESSION_COUNT_TTL_S = env_int("WHEP_SESSION_COUNT_TTL_S", 4 * 3600, 60, 7 * 24 * 3600)

# --- The wall ---------------------------------------------------------------------
# Flow control per dashboard: frames the browser has not confirmed (it confirms once a second).
# Past this many, the dashboard gets nothing more until it catches up, then one fresh snapshot;
# after WALL_SLOW_CLOSE_S behind it is disconnected (4008) and reconnects to a snapshot.
WALL_MAX_UNSEEN_FRAMES = env_int("WALL_MAX_UNSEEN_FRAMES", 24, 2, 1000)
WALL_SLOW_CLOSE_S = env_int("WALL_SLOW_CLOSE_S", 30, 1, 3600)

# --- The web process's garbage collector (controlroom/gc_tuning.py) --------------------
# Python's defaults (700,10,10) stopped a process holding 10,000 sockets for up to 1.3 s every few
# seconds. Young collections stay small; full ones become rare. "python" keeps the interpreter's
# defaults. Collections slower than GC_PAUSE_WARNING_MS are logged.
try:
    GC_THRESHOLDS = parse_gc_thresholds(os.environ.get("GC_THRESHOLDS", "7000,10,1000"))
except ValueError as exc:
    raise ImproperlyConfigured(f"GC_THRESHOLDS: {exc}") from None
GC_PAUSE_WARNING_MS = env_int("GC_PAUSE_WARNING_MS", 100, 1, 60000)

# --- Security (production: DEBUG=0 passes check --deploy) ------------------------
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, 0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "aioice": {"level": "WARNING"},
        "aiortc": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}

# --- Compensation ------------------------------------------------------------------
# Campaigns costing more than this (fen) need a manager's approval by a second person.
COMPENSATION_APPROVAL_THRESHOLD_FEN = env_int("COMPENSATION_APPROVAL_THRESHOLD_FEN", 100_000, 0)
# The sweeper re-queues issuance batches still pending this long after they were queued.
COMPENSATION_STUCK_AFTER_S = env_int("COMPENSATION_STUCK_AFTER_S", 60, 1, 3600)
COMPENSATION_SWEEP_INTERVAL_S = env_int("COMPENSATION_SWEEP_INTERVAL_S", 10, 1, 600)
# Presence shorter than this never makes a viewer eligible, whatever a campaign asks (farming costs time).
COMPENSATION_MIN_WATCH_S = env_int("COMPENSATION_MIN_WATCH_S", 60, 0, 3600)
# Platform-signed viewer tokens (docs/integrators.md) may live at most this long.
VIEWER_TOKEN_MAX_TTL_S = env_int("VIEWER_TOKEN_MAX_TTL_S", 86_400, 60, 30 * 86_400)
# Viewer sockets and chat are limited per client address and per viewer, not per socket
# (streams/viewer_limits.py; generous because carrier-grade NAT puts many viewers behind one address).
VIEWER_SOCKETS_PER_ADDRESS = env_int("VIEWER_SOCKETS_PER_ADDRESS", 50, 1, 1_000_000)
VIEWER_CHAT_INTERVAL_S = env_int("VIEWER_CHAT_INTERVAL_S", 1, 0, 3600)
VIEWER_CHAT_ADDRESS_BURST = env_int("VIEWER_CHAT_ADDRESS_BURST", 10, 1, 100_000)
VIEWER_CHAT_PER_ADDRESS_PER_MINUTE = env_int("VIEWER_CHAT_PER_ADDRESS_PER_MINUTE", 60, 1, 1_000_000)
