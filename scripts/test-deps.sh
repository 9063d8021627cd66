#!/usr/bin/env bash
# What the test suite needs besides Python packages: Debian's chromium for the browser tests
# (Playwright drives /usr/bin/chromium; no browser download) and a CJK font so the screenshots
# saved as test artefacts show Chinese text, not boxes; stress-ng for `make test-loaded` (the suite with
# both cores busy); nginx with libnginx-mod-rtmp and ffmpeg for the RTMP tests (the ingest edge, the stand-in
# platform and independent encoders/players; under CI=true the RTMP tests fail rather than skip without them);
# pg_partman for the local PostgreSQL server (migrations partition the health samples with it);
# and reachable PostgreSQL + Redis.
set -eu
missing=""
[ -x /usr/bin/chromium ] || missing="chromium"
fc-list 2>/dev/null | grep -qi "wqy\|cjk" || missing="$missing fonts-wqy-microhei"
command -v stress-ng >/dev/null || missing="$missing stress-ng"
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$missing nginx"
[ -e /usr/lib/nginx/modules/ngx_rtmp_module.so ] || missing="$missing libnginx-mod-rtmp"
command -v ffmpeg >/dev/null || missing="$missing ffmpeg"
for v in $(ls /usr/lib/postgresql 2>/dev/null); do
  [ -f "/usr/share/postgresql/$v/extension/pg_partman.control" ] || missing="$missing postgresql-$v-partman"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    # Debian starts the system nginx on port 80 when it is installed; the tests run their own private ones.
    case " $missing " in *" nginx "*) (service nginx stop || systemctl stop nginx) >/dev/null 2>&1 || true ;; esac
  else
    echo "The tests need: sudo apt-get install$missing" >&2
    if [ "${CI:-}" = "true" ]; then exit 1; fi
  fi
fi
