# The two commands (see README): `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-loaded venv test-deps serve clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt
	$(PY) -m pip install -q -r requirements-test.txt
	touch $@

venv: $(VENV)/.installed

# Install, migrate, seed the demo, start the whole product (server, media worker,
# simulated streams; Celery workers too when REDIS_URL is set) and print the URL and logins.
run: venv
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py seed_demo
	$(PY) manage.py seed_demo_duty
	HOST=$(HOST) PORT=$(PORT) PY=$(PY) bash scripts/run.sh

# Everything the tests need, then the whole suite against real PostgreSQL and Redis.
test: $(VENV)/.installed-test
	bash scripts/test-deps.sh
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/controlroom} \
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/0} \
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The same suite with both cores kept busy by an outside CPU hog (stress-ng), as on a shared host.
# Not part of CI (it takes about twice as long); run it after changing timing-sensitive code or tests.
test-loaded: $(VENV)/.installed-test
	bash scripts/test-deps.sh
	command -v stress-ng >/dev/null || { echo "make test-loaded needs stress-ng (apt-get install stress-ng)" >&2; exit 1; }
	stress-ng --cpu 2 --timeout 3600s --quiet & hog=$$!; \
	trap 'kill $$hog 2>/dev/null' EXIT; \
	$(MAKE) --no-print-directory test PYTEST_ARGS="$(PYTEST_ARGS)"

clean:
	rm -rf $(VENV) db.sqlite3* staticfiles mediafiles
