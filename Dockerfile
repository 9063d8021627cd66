FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# gettext for compilemessages; curl for the health check. aiortc/av/psycopg ship binary wheels.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gettext curl \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 app
WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY --chown=app:app . .
# Build-time only values so collectstatic can import the settings.
RUN DEBUG=0 SECRET_KEY=build-only-build-only-build-only-build-only-build-only \
    python manage.py collectstatic --noinput \
    && python manage.py compilemessages -l en \
    && mkdir -p /app/mediafiles && chown -R app:app /app/staticfiles /app/mediafiles /app/locale

USER app
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1
CMD ["daphne", "-e", "tcp:port=8000:interface=0.0.0.0:backlog=1024", "controlroom.asgi:application"]
