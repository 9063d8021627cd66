# PostgreSQL 15 with pg_partman (from the PGDG repository the official image already uses).
FROM postgres:15-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-15-partman \
    && rm -rf /var/lib/apt/lists/*
