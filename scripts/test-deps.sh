#!/usr/bin/env bash
# What the test suite needs besides Python packages: Debian's chromium for the browser tests
# (Playwright drives /usr/bin/chromium; no browser download) and a CJK font so the screenshots
# saved as test artefacts show Chinese text, not boxes; stress-ng for `make test-loaded` (the suite with
# both cores busy); pg_partman for the local PostgreSQL server (migrations partition the health samples with it);
# and reachable PostgreSQL + Redis.
set -eu
missing=""
[ -x /usr/bin/chromium ] || missing="chromium"
fc-list 2>/dev/null | grep -qi "wqy\|cjk" || missing="$missing fonts-wqy-microhei"
command -v stress-ng >/dev/null || missing="$missing stress-ng"
for v in $(ls /usr/lib/postgresql 2>/dev/null); do
  [ -f "/usr/share/postgresql/$v/extension/pg_partman.control" ] || missing="$missing postgresql-$v-partman"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "The tests need: sudo apt-get install $missing" >&2
  fi
fi
