#!/usr/bin/env bash
# Start the product's processes; stop them all on Ctrl-C.
set -euo pipefail
PY=${PY:-.venv/bin/python}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

if [ -n "${REDIS_URL:-}" ]; then
  # Beat in its own process, as in production: a worker's embedded beat child could outlive a SIGTERM.
  "$PY" -m celery -A controlroom worker --loglevel=WARNING --concurrency=2 & pids+=($!)
  "$PY" -m celery -A controlroom beat --loglevel=WARNING --schedule "$(mktemp -d)/celerybeat-schedule" & pids+=($!)
  if "$PY" manage.py help mediaworker >/dev/null 2>&1; then "$PY" manage.py mediaworker & pids+=($!); fi
fi
"$PY" -m daphne -e "tcp:port=$PORT:interface=$HOST:backlog=1024" controlroom.asgi:application & daphne_pid=$!
pids+=($daphne_pid)

for _ in $(seq 1 100); do
  if curl -fsS "http://$HOST:$PORT/healthz" >/dev/null 2>&1; then break; fi
  sleep 0.3
done
if "$PY" manage.py help simulate_streams >/dev/null 2>&1 && [ "${SIMULATE_STREAMS:-1}" = "1" ]; then
  "$PY" manage.py simulate_streams --url "http://$HOST:$PORT" & pids+=($!)
fi

cat <<MSG

  直播中控台 / Live-commerce control room is running:  http://$HOST:$PORT/
  Viewer page example:  http://$HOST:$PORT/live/beauty-01
  Logins (username / password): operator / operator-demo-2026 (ops) · floor / floor-demo-2026 (floor control)
                                tech / tech-demo-2026 (tech support) · manager / manager-demo-2026 (manager)
  Ctrl-C stops everything.

MSG
# The product lives as long as its web server.
wait "$daphne_pid"
