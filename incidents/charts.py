"""Turn analytics numbers into labelled rows and SVG geometry for server-rendered charts."""

from django.utils.translation import gettext as _

from controlroom.roles import ROLE_LABELS
from streams.models import LiveRoom

from .messages import pick
from .models import IncidentType
from .seed import english


def weekday_labels():
    return [_("周一"), _("周二"), _("周三"), _("周四"), _("周五"), _("周六"), _("周日")]  # ISO 1..7


def _bars(items, width=420, bar_h=22, gap=6, label_w=130):
    """Horizontal bars: items = [(label, value)] -> rows with geometry."""
    peak = max((v for _, v in items), default=0) or 1
    rows = []
    for idx, (label, value) in enumerate(items):
        w = round((width - label_w - 60) * value / peak, 1)
        rows.append({"label": label, "value": value, "y": idx * (bar_h + gap), "w": w, "x": label_w,
                     "tx": label_w + w + 6, "ty": idx * (bar_h + gap) + bar_h * 0.7})
    return {"rows": rows, "width": width, "height": max(len(items), 1) * (bar_h + gap), "bar_h": bar_h,
            "label_w": label_w}


def _minutes(seconds):
    return None if seconds is None else round(float(seconds) / 60, 1)


def build(data):
    types = {t.pk: t.display_name for t in IncidentType.objects.all()}
    room_names = {r.pk: r.name for r in LiveRoom.objects.filter(pk__in=list(data["counts"]["room"]))}
    c = data["counts"]
    by_type = sorted(((types.get(k, k), v) for k, v in c["type"].items()), key=lambda x: -x[1])
    by_sev = [(f"SEV{k}", v) for k, v in sorted(c["severity"].items())]
    by_room = sorted(((room_names.get(k, k), v) for k, v in c["room"].items()), key=lambda x: -x[1])[:15]
    by_merchant = sorted(c["merchant"].items(), key=lambda x: -x[1])[:15]

    heat_peak = max(c["heat"].values(), default=0) or 1
    cell = 22
    heat = []
    for dow in range(1, 8):
        for hour in range(24):
            n = c["heat"].get((dow, hour), 0)
            heat.append({"dow": dow, "hour": hour, "n": n, "x": 40 + hour * cell, "y": (dow - 1) * cell,
                         "opacity": round(0.08 + 0.92 * n / heat_peak, 3) if n else 0.04})
    heatmap = {"cells": heat, "cell": cell - 2, "width": 40 + 24 * cell, "height": 7 * cell + 20,
               "days": [{"label": d, "y": i * cell + 15} for i, d in enumerate(weekday_labels())],
               "hours": [{"label": h, "x": 40 + h * cell + 4} for h in range(0, 24, 3)], "peak": heat_peak}

    response = []
    total = None
    for row in data["response"]:
        item = {
            "type": _("全部") if row["is_total"] else types.get(row["incident_type_id"], row["incident_type_id"]),
            "is_total": bool(row["is_total"]),
            "n": row["n"],
            **{f"{m}_{k}": _minutes(row[f"{m}_{k}"]) for m in ("mtta", "mttm", "mttr") for k in ("mean", "median")},
            "announce_mean": _minutes(row["announce_mean"]), "downtime_mean": _minutes(row["downtime_mean"]),
            "downtime_total_h": None if row["downtime_total"] is None else round(float(row["downtime_total"]) / 3600, 1),
        }
        if row["is_total"]:
            total = item
        else:
            response.append(item)
    response.sort(key=lambda r: -(r["mttr_mean"] or 0))

    weekly = data["weekly"]
    trend = None
    if weekly:
        w, h, pad = 640, 180, 30
        peak = max((float(r["mttr_mean"] or 0) / 60 for r in weekly), default=0) or 1
        n_peak = max(r["n"] for r in weekly) or 1
        step = (w - 2 * pad) / max(len(weekly) - 1, 1)
        bar_w = max(2, round(min(step, (w - 2 * pad) / 4) * 0.6, 1))
        pts = []
        for i, r in enumerate(weekly):
            # one week: in the middle (a lone point at the left edge read as a broken chart)
            x = pad + i * step if len(weekly) > 1 else w / 2
            pts.append({"x": round(x, 1), "week": r["week"].isoformat(), "n": r["n"],
                        "mtta": _minutes(r["mtta_mean"]), "mttm": _minutes(r["mttm_mean"]),
                        "mttr": _minutes(r["mttr_mean"]),
                        "y_mttr": round(h - pad - (h - 2 * pad) * (float(r["mttr_mean"] or 0) / 60) / peak, 1),
                        "y_mtta": round(h - pad - (h - 2 * pad) * (float(r["mtta_mean"] or 0) / 60) / peak, 1),
                        "bar_h": round((h - 2 * pad) * r["n"] / n_peak, 1), "bar_x": round(x - bar_w / 2, 1)})
        trend = {"points": pts, "width": w, "height": h, "pad": pad, "peak_min": round(peak, 1),
                 "mttr_path": " ".join(f"{p['x']},{p['y_mttr']}" for p in pts),
                 "mtta_path": " ".join(f"{p['x']},{p['y_mtta']}" for p in pts),
                 "bar_w": bar_w}

    rates = data["rates"]
    rate_bars = _bars([(_("夜班"), round(rates["night"]["rate"] or 0, 3)), (_("白班"), round(rates["day"]["rate"] or 0, 3))])
    steps = [{"role": str(ROLE_LABELS.get(s["role"], s["role"])), "title": pick(s["title"], english(s["title"])),
              "n": s["n"],
              "mean_s": round(float(s["mean_s"]), 1), "max_s": round(float(s["max_s"]), 1)}
             for s in data["slowest_steps"]]
    step_bars = _bars([(s["title"][:14], s["mean_s"]) for s in steps], width=520, label_w=200)
    return {
        "by_type": _bars(by_type), "by_severity": _bars(by_sev), "by_room": _bars(by_room),
        "by_merchant": _bars(by_merchant), "heatmap": heatmap, "response": response, "total": total,
        "trend": trend, "rates": rates, "rate_bars": rate_bars, "slowest_steps": steps, "step_bars": step_bars,
    }


def flat_rows(view):
    """(section, key, metric, value) rows for the CSV export of the same numbers."""
    for section in ("by_type", "by_severity", "by_room", "by_merchant"):
        for row in view[section]["rows"]:
            yield section, row["label"], "incidents", row["value"]
    for cell in view["heatmap"]["cells"]:
        yield "heatmap", f"{weekday_labels()[cell['dow'] - 1]} {cell['hour']:02d}时", "incidents", cell["n"]
    for shift, r in view["rates"].items():
        yield "rate_per_live_hour", shift, "incidents", r["incidents"]
        yield "rate_per_live_hour", shift, "live_hours", round(r["live_hours"], 3)
        yield "rate_per_live_hour", shift, "incidents_per_live_hour", None if r["rate"] is None else round(r["rate"], 4)
    for row in ([view["total"]] if view["total"] else []) + view["response"]:
        for metric in ("mtta_mean", "mtta_median", "mttm_mean", "mttm_median", "mttr_mean", "mttr_median",
                       "announce_mean", "downtime_mean"):
            yield "response_minutes", row["type"], metric, row[metric]
        yield "response_minutes", row["type"], "incidents", row["n"]
        yield "downtime_hours", row["type"], "total", row["downtime_total_h"]
    for p in (view["trend"] or {}).get("points", []):
        for metric in ("n", "mtta", "mttm", "mttr"):
            yield "weekly", p["week"], metric, p[metric]
    for s in view["slowest_steps"]:
        yield "slowest_steps", f"{s['role']} {s['title']}", "mean_s", s["mean_s"]
        yield "slowest_steps", f"{s['role']} {s['title']}", "max_s", s["max_s"]
