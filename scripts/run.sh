#!/usr/bin/env bash
# Start the product's processes; stop them all on Ctrl-C.
set -euo pipefail
PY=${PY:-.venv/bin/python}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

# The demo's RTMP push: one encode per room, six rooms on a laptop: a light profile unless told otherwise.
export MEDIA_PUSH_WIDTH=${MEDIA_PUSH_WIDTH:-640} MEDIA_PUSH_HEIGHT=${MEDIA_PUSH_HEIGHT:-360}
export MEDIA_PUSH_BITRATE=${MEDIA_PUSH_BITRATE:-800000}

# The RTMP edge (nginx + libnginx-mod-rtmp, a private prefix under RUNTIME_DIR, non-privileged ports):
# encoders publish to its ingest app, and its "live" app stands in for the platforms the demo pushes to.
RUNTIME_DIR=${RUNTIME_DIR:-$(pwd)/.run}
RTMP_INGEST_PORT=${RTMP_INGEST_PORT:-1935}
RTMP_PLATFORM_PORT=${RTMP_PLATFORM_PORT:-1936}
export RTMP_INGEST_PORT RTMP_PLATFORM_PORT
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
edge_msg="RTMP edge: not installed (sudo apt-get install nginx libnginx-mod-rtmp, then make run again); the product runs without it"
if [ "${RTMP_EDGE:-1}" = "1" ] && [ -x "$NGINX" ] && [ -e /usr/lib/nginx/modules/ngx_rtmp_module.so ]; then
  edge_conf=$("$PY" manage.py rtmp_edge_config --dir "$RUNTIME_DIR/edge" --callback "http://$HOST:$PORT" \
              --ingest-port "$RTMP_INGEST_PORT" --platform-port "$RTMP_PLATFORM_PORT")
  "$NGINX" -c "$edge_conf" -p "$RUNTIME_DIR/edge" 2>>"$RUNTIME_DIR/edge/error.log" & edge_pid=$!
  pids+=($edge_pid)
  sleep 0.5
  if kill -0 "$edge_pid" 2>/dev/null; then
    edge_msg="RTMP ingest: rtmp://127.0.0.1:$RTMP_INGEST_PORT/ingest  (stream key <room>.<line>.<token>; see README)
  Stand-in platform: ffplay rtmp://127.0.0.1:$RTMP_PLATFORM_PORT/live/beauty-01   (what the platform receives)"
  else
    edge_msg="RTMP edge: nginx did not start (ports $RTMP_INGEST_PORT/$RTMP_PLATFORM_PORT busy?); see $RUNTIME_DIR/edge/error.log. The product runs without it"
  fi
elif [ "${RTMP_EDGE:-1}" != "1" ]; then
  edge_msg="RTMP edge: off (RTMP_EDGE=0)"
fi

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
  $edge_msg
  Ctrl-C stops everything.

MSG
# The product lives as long as its web server.
wait "$daphne_pid"
