"""Manager analytics, computed in PostgreSQL (one query per panel, all on indexed columns).

Definitions (production incidents only: drills and cancelled incidents are excluded):
  MTTA = acknowledged_at - detected_at      MTTM = mitigated_at - detected_at
  MTTR = resolved_at - detected_at          (each over incidents that reached the milestone)
  Time to first viewer announcement = first_announcement_at - detected_at
  Viewer-visible downtime = COALESCE(mitigated_at, resolved_at) - detected_at (until viewers saw a
  working picture again: a backup line, a slate, or the fix)
  Failure rate per live hour = incidents detected in a shift / live hours in that shift, live hours
  from streams.LiveSession intervals split at the shift boundaries (Asia/Shanghai wall clock).
"""

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

TZ_NAME = "Asia/Shanghai"


@dataclass
class ShiftBands:
    night_start: int = 22
    night_end: int = 8

    def night_bands(self):
        """Night as [lo, hi) hour bands within one local day."""
        if self.night_start > self.night_end:
            return [(0, self.night_end), (self.night_start, 24)]
        if self.night_start == self.night_end:
            return []
        return [(self.night_start, self.night_end)]

    def is_night(self, hour):
        if self.night_start > self.night_end:
            return hour >= self.night_start or hour < self.night_end
        return self.night_start <= hour < self.night_end

    def is_night_sql(self, hour_expr):
        if self.night_start > self.night_end:
            return f"({hour_expr} >= {int(self.night_start)} OR {hour_expr} < {int(self.night_end)})"
        return f"({hour_expr} >= {int(self.night_start)} AND {hour_expr} < {int(self.night_end)})"


def default_bands():
    start, end = getattr(settings, "INCIDENTS_NIGHT_SHIFT", (22, 8))
    return ShiftBands(start, end)


def default_range(days=90):
    tz = timezone.get_default_timezone()
    today = timezone.localdate()
    end = timezone.make_aware(datetime.combine(today + timedelta(days=1), time.min), tz)
    return end - timedelta(days=days), end


def _rows(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        cols = [c.name for c in cursor.description]
        return [dict(zip(cols, row)) for row in cursor.fetchall()]


# Production incidents in the window, on the narrow trigger-maintained copy (incidents_incidentfact).
FACT_WHERE = """f.counted AND f.detected_at >= %(start)s AND f.detected_at < %(end)s"""
FACT_COLUMN = {"mtta": "f.mtta_s", "mttm": "f.mttm_s", "mttr": "f.mttr_s", "announce": "f.announce_s",
               "downtime": "f.downtime_s"}


def counts(start, end, bands):
    """Counts by type, severity, room, merchant, shift and (weekday, hour).

    One scan with GROUPING SETS on the stored Beijing-time hour/weekday columns; merchant and
    shift counts are sums of the room and (weekday, hour) counts, done in Python on a few rows.
    """
    sql = f"""
        SELECT GROUPING(f.incident_type_id) AS g_type, GROUPING(f.severity) AS g_sev,
               GROUPING(f.room_id) AS g_room,
               f.incident_type_id, f.severity, f.room_id, f.local_dow AS dow, f.local_hour AS hour, COUNT(*) AS n
        FROM incidents_incidentfact f
        WHERE {FACT_WHERE}
        GROUP BY GROUPING SETS ((f.incident_type_id), (f.severity), (f.room_id), (f.local_dow, f.local_hour))
    """
    out = {"type": {}, "severity": {}, "room": {}, "merchant": {}, "shift": {}, "heat": {}}
    for row in _rows(sql, {"start": start, "end": end}):
        if not row["g_type"]:
            out["type"][row["incident_type_id"]] = row["n"]
        elif not row["g_sev"]:
            out["severity"][row["severity"]] = row["n"]
        elif not row["g_room"]:
            out["room"][row["room_id"]] = row["n"]
        else:
            out["heat"][(row["dow"], row["hour"])] = row["n"]
    if out["room"]:
        from streams.models import LiveRoom

        for room_id, merchant in LiveRoom.objects.filter(pk__in=list(out["room"])).values_list("pk", "merchant"):
            out["merchant"][merchant] = out["merchant"].get(merchant, 0) + out["room"][room_id]
    for (dow, hour), n in out["heat"].items():
        shift = "night" if bands.is_night(hour) else "day"
        out["shift"][shift] = out["shift"].get(shift, 0) + n
    return out


def _epoch(a, b="i.detected_at"):
    # date_part() is float8; EXTRACT() is numeric since PostgreSQL 14 and much slower to sum and sort.
    return f"date_part('epoch', {a} - {b})"


# The definitions (the trigger in migration 0008 stores exactly these per incident).
DURATIONS = {
    "mtta": _epoch("i.acknowledged_at"),
    "mttm": _epoch("i.mitigated_at"),
    "mttr": _epoch("i.resolved_at"),
    "announce": _epoch("i.first_announcement_at"),
    "downtime": _epoch("COALESCE(i.mitigated_at, i.resolved_at)"),
}


def _means(groups):
    """Turn the SUM/COUNT columns of a row into means (None when nothing reached the milestone)."""
    for row in groups:
        for name in DURATIONS:
            n = row.pop(f"{name}_n")
            total = row.pop(f"{name}_sum")
            row[f"{name}_mean"] = (total / n) if n else None
            row[f"{name}_count"] = n
            row[f"{name}_total"] = total
    return groups


def sums_by_type_and_week(start, end):
    """Counts and duration sums by type and by Beijing-time week (Monday).

    One hash aggregate at the (type, week) grain; the per-type and per-week totals are sums of
    those few hundred rows (sums and counts add up exactly).
    """
    cols = ", ".join(f"SUM({c}) AS {n}_sum, COUNT({c}) AS {n}_n" for n, c in FACT_COLUMN.items())
    sql = f"""
        SELECT f.incident_type_id, f.week, COUNT(*) AS n, {cols}
        FROM incidents_incidentfact f
        WHERE {FACT_WHERE}
        GROUP BY 1, 2
    """
    by_type, by_week = {}, {}
    keys = ["n"] + [f"{n}_{k}" for n in DURATIONS for k in ("sum", "n")]
    for row in _rows(sql, {"start": start, "end": end}):
        for bucket, key in ((by_type, row["incident_type_id"]), (by_week, row["week"])):
            acc = bucket.setdefault(key, {k: 0 for k in keys})
            for k in keys:
                acc[k] += row[k] or 0
    by_type = _means([{"incident_type_id": k, **v} for k, v in by_type.items()])
    weekly = _means([{"week": k, **v} for k, v in sorted(by_week.items())])
    return by_type, weekly


MEDIANS = ("mtta", "mttm", "mttr")


def medians_by_type(start, end, metrics=MEDIANS):
    cols = ", ".join(f"PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY {FACT_COLUMN[n]}) AS {n}_median"
                     for n in metrics)
    sql = f"""
        SELECT f.incident_type_id, {cols}
        FROM incidents_incidentfact f
        WHERE {FACT_WHERE}
        GROUP BY f.incident_type_id
    """
    return {r.pop("incident_type_id"): r for r in _rows(sql, {"start": start, "end": end})}


def response_times(start, end):
    """MTTA/MTTM/MTTR mean and median by type; first-announcement time and downtime (means);
    plus an overall row (means exact from the per-type sums; medians per type only)."""
    by_type, _ = sums_by_type_and_week(start, end)
    return _response_rows(by_type, medians_by_type(start, end))


def _response_rows(by_type, medians):
    rows = []
    for r in by_type:
        # A type whose incidents reached no milestone yet has no medians: say so instead of omitting them.
        no_medians = {f"{m}_median": None for m in MEDIANS}
        rows.append({**r, **no_medians, **medians.get(r["incident_type_id"], {}), "is_total": 0,
                     "downtime_total": r["downtime_total"]})
    if rows:
        total = {"incident_type_id": None, "is_total": 1, "n": sum(r["n"] for r in rows)}
        for name in DURATIONS:
            n = sum(r[f"{name}_count"] for r in rows)
            s = sum(r[f"{name}_total"] or 0 for r in rows)
            total[f"{name}_mean"] = (s / n) if n else None
        total["downtime_total"] = sum(r["downtime_total"] or 0 for r in rows)
        for name in ("mtta", "mttm", "mttr"):
            total[f"{name}_median"] = None
        rows.append(total)
    return rows


def weekly_trend(start, end):
    return sums_by_type_and_week(start, end)[1]


def _night_seconds_until(ts_expr, bands):
    """SQL for F(t): night seconds from 1970-01-01 00:00 (wall clock) to the local timestamp t.

    F(t) = whole days * night seconds per day + night seconds into the current day, so the night
    part of an interval [s, e) is F(e) - F(s): no per-day rows needed.
    """
    epoch = f"date_part('epoch', {ts_expr})"
    day = f"floor({epoch} / 86400)"
    into = f"({epoch} - {day} * 86400)"
    per_day = sum((hi - lo) * 3600 for lo, hi in bands.night_bands())
    parts = [f"{day} * {per_day}"] + [
        f"LEAST(GREATEST({into} - {lo * 3600}, 0), {(hi - lo) * 3600})" for lo, hi in bands.night_bands()]
    return " + ".join(parts)


def live_hours(start, end, bands, now=None):
    """Live hours in the range split into night/day by the shift bands (wall clock, Asia/Shanghai).

    Each LiveSession interval is clipped to [start, end) (an open session to `now`) and its night
    part is F(end) - F(start) with F the cumulative night seconds of the wall clock.
    """
    now = now or timezone.now()
    sql = f"""
        WITH s AS MATERIALIZED (  -- convert each bound once, not once per use below
            SELECT timezone(%(tz)s, GREATEST(ls.started_at, %(start)s)) AS s,
                   timezone(%(tz)s, LEAST(COALESCE(ls.ended_at, %(now)s), %(end)s)) AS e
            FROM streams_livesession ls
            WHERE ls.started_at < %(end)s AND COALESCE(ls.ended_at, %(now)s) > %(start)s
        )
        SELECT COALESCE(SUM(date_part('epoch', e - s)), 0) AS total_s,
               COALESCE(SUM(({_night_seconds_until('e', bands)}) - ({_night_seconds_until('s', bands)})), 0) AS night_s
        FROM s WHERE e > s
    """
    row = _rows(sql, {"tz": TZ_NAME, "start": start, "end": end, "now": now})[0]
    total = float(row["total_s"]) / 3600
    night = float(row["night_s"]) / 3600
    return {"total": total, "night": night, "day": total - night}


def failure_rates(start, end, bands, counts_by_shift=None, now=None):
    hours = live_hours(start, end, bands, now=now)
    if counts_by_shift is None:
        counts_by_shift = counts(start, end, bands)["shift"]
    out = {}
    for shift in ("night", "day"):
        n = counts_by_shift.get(shift, 0)
        h = hours[shift]
        out[shift] = {"incidents": n, "live_hours": h, "rate": (n / h) if h > 0 else None}
    return out


def slowest_steps(start, end, limit=10):
    """Mean and longest time per runbook step (steps completed in the range, drills excluded),
    from the daily rollup kept by incidents.services.complete_step."""
    sql = """
        SELECT role, title, SUM(n) AS n, SUM(total_ms)::float8 / NULLIF(SUM(n), 0) / 1000.0 AS mean_s,
               MAX(max_ms) / 1000.0 AS max_s
        FROM incidents_stepdurationdaily
        WHERE NOT is_drill AND day >= %(start_day)s AND day < %(end_day)s
        GROUP BY role, title
        ORDER BY mean_s DESC
        LIMIT %(limit)s
    """
    return _rows(sql, {"start_day": timezone.localdate(start), "end_day": timezone.localdate(end)
                       + (timedelta(days=1) if timezone.localtime(end).time() != time.min else timedelta(0)),
                       "limit": limit})


def split_live_seconds(sessions, start, end, bands, now):
    """(night seconds, total seconds) of on-air time in [start, end), split at the shift bands
    (local time). Sessions are (started_at, ended_at or None = still live until `now`)."""
    night = total = 0.0
    for s, e in sessions:
        s, e = max(s, start), min(e or now, end)
        if e <= s:
            continue
        total += (e - s).total_seconds()
        day = timezone.localtime(s).replace(hour=0, minute=0, second=0, microsecond=0)
        while day < e:
            for lo, hi in bands.night_bands():
                a, b = max(s, day + timedelta(hours=lo)), min(e, day + timedelta(hours=hi))
                if b > a:
                    night += (b - a).total_seconds()
            day += timedelta(days=1)
    return night, total


def python_dashboard(start, end, bands, now=None):
    """The same figures computed in Python: the embedded SQLite default has none of the PostgreSQL
    features used above (fine for a demo's few hundred incidents, far too slow for 100k)."""
    import statistics

    from django.db.models import Max, Sum

    from .models import Incident, StepDurationDaily
    from streams.models import LiveSession

    now = now or timezone.now()
    c = {"type": {}, "severity": {}, "room": {}, "merchant": {}, "shift": {}, "heat": {}}
    by_type, by_week, values = {}, {}, {}
    rows = (Incident.objects.filter(is_drill=False, detected_at__gte=start, detected_at__lt=end)
            .exclude(status="cancelled")
            .values_list("incident_type_id", "severity", "room_id", "room__merchant", "detected_at",
                         "acknowledged_at", "mitigated_at", "resolved_at", "first_announcement_at"))

    def bump(bucket, key, n=1):
        bucket[key] = bucket.get(key, 0) + n

    for type_id, severity, room_id, merchant, detected, ack, mit, res, ann in rows:
        local = timezone.localtime(detected)
        bump(c["type"], type_id)
        bump(c["severity"], severity)
        bump(c["room"], room_id)
        bump(c["merchant"], merchant)
        bump(c["shift"], "night" if bands.is_night(local.hour) else "day")
        bump(c["heat"], (local.isoweekday(), local.hour))
        week = local.date() - timedelta(days=local.isoweekday() - 1)
        ends = {"mtta": ack, "mttm": mit, "mttr": res, "announce": ann, "downtime": mit or res}
        for bucket, key in ((by_type, type_id), (by_week, week)):
            acc = bucket.setdefault(key, {"n": 0, **{f"{m}_{k}": 0 for m in DURATIONS for k in ("sum", "n")}})
            acc["n"] += 1
            for m, t in ends.items():
                if t is not None:
                    acc[f"{m}_sum"] += (t - detected).total_seconds()
                    acc[f"{m}_n"] += 1
        for m in MEDIANS:
            if ends[m] is not None:
                values.setdefault(type_id, {}).setdefault(m, []).append((ends[m] - detected).total_seconds())
    medians = {t: {f"{m}_median": statistics.median(v[m]) if v.get(m) else None for m in MEDIANS}
               for t, v in values.items()}
    sums = (_means([{"incident_type_id": k, **v} for k, v in by_type.items()]),
            _means([{"week": k, **v} for k, v in sorted(by_week.items())]))

    sessions = LiveSession.objects.filter(started_at__lt=end).values_list("started_at", "ended_at")
    night, total = split_live_seconds(sessions, start, end, bands, now)
    hours = {"total": total / 3600, "night": night / 3600, "day": (total - night) / 3600}

    end_day = timezone.localdate(end) + (timedelta(days=1) if timezone.localtime(end).time() != time.min
                                         else timedelta(0))
    steps = []
    for r in (StepDurationDaily.objects.filter(is_drill=False, day__gte=timezone.localdate(start), day__lt=end_day)
              .values("role", "title").annotate(n=Sum("n"), total=Sum("total_ms"), longest=Max("max_ms"))):
        steps.append({"role": r["role"], "title": r["title"], "n": r["n"],
                      "mean_s": r["total"] / r["n"] / 1000 if r["n"] else 0, "max_s": r["longest"] / 1000})
    steps = sorted(steps, key=lambda r: -r["mean_s"])[:10]
    return _assemble(c, sums, medians, hours, steps)


def dashboard(start, end, bands):
    """Everything the analytics page shows.

    The five queries are independent, so outside a transaction they run concurrently, each on
    its own connection (PostgreSQL uses one core per backend). Inside a transaction (tests,
    callers that need one snapshot) they run one after another on the caller's connection.
    """
    if connection.vendor != "postgresql":
        return python_dashboard(start, end, bands)
    if connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = '64MB'")
        return _assemble(counts(start, end, bands), sums_by_type_and_week(start, end),
                         medians_by_type(start, end), live_hours(start, end, bands), slowest_steps(start, end))
    from concurrent.futures import ThreadPoolExecutor

    def on_own_connection(fn, *args):
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET work_mem = '64MB'")  # sorts for the medians stay in memory
            return fn(*args)
        finally:
            connection.close()  # this thread's connection

    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="analytics") as pool:
        f_counts = pool.submit(on_own_connection, counts, start, end, bands)
        f_sums = pool.submit(on_own_connection, sums_by_type_and_week, start, end)
        f_medians = pool.submit(on_own_connection, medians_by_type, start, end)
        f_small = pool.submit(on_own_connection, lambda: (live_hours(start, end, bands), slowest_steps(start, end)))
        hours, steps = f_small.result()
        return _assemble(f_counts.result(), f_sums.result(), f_medians.result(), hours, steps)


def _assemble(c, sums, medians, hours, steps):
    by_type, weekly = sums
    rates = {}
    for shift in ("night", "day"):
        n = c["shift"].get(shift, 0)
        h = hours[shift]
        rates[shift] = {"incidents": n, "live_hours": h, "rate": (n / h) if h > 0 else None}
    return {
        "counts": c,
        "response": _response_rows(by_type, medians),
        "weekly": weekly,
        "rates": rates,
        "slowest_steps": steps,
    }
