"""Generate a realistic incident history in PostgreSQL (for analytics benchmarks and demos).

    manage.py seed_incident_history --incidents 100000 --entries 1000000

Rooms "hist-NN" with daily live sessions over --days; incidents fall inside live sessions (night
sessions fail more often, so the night/day rate has something to show); each incident has
milestones, per-role step completions with durations, and timeline entries. Rows are written
with COPY in one transaction; --clear removes a previous run first.
"""

import json
import random
import time
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from incidents.services import rebuild_step_rollup
from incidents.models import Incident, IncidentFact, IncidentStep, IncidentTimelineEntry, IncidentType, Runbook
from streams.models import LiveRoom, LiveSession

MERCHANTS = ["鹿鸣美妆旗舰店", "好味零食铺", "琳琅服饰", "王牌数码", "云雾茶庄", "壮家居", "果园直供", "宝贝母婴",
             "运动达人", "书香文具", "宠物乐园", "极客电器", "花间园艺", "海味干货", "匠心珠宝", "暖暖家纺",
             "轻食厨房", "户外装备", "童趣玩具", "老字号糕点"]
HOSTS = ["小鹿", "阿杰", "琳琳", "老王", "茶姐", "大壮", "果果", "兰兰", "阿飞", "小书", "喵喵", "极客哥", "花花",
         "海哥", "珠珠", "暖暖", "轻轻", "山哥", "童童", "糕糕"]
CAUSES = {
    "weak-network": ["现场 Wi-Fi 信号弱,上行带宽不足", "运营商链路抖动,丢包率升至 15%", "推流码率设置过高"],
    "stream-interruption": ["机房路由器重启导致主线路断流", "推流电脑死机", "网线松动", "编码器进程崩溃"],
    "device-failure": ["主播麦克风电池耗尽", "摄像头 USB 接口松动", "补光灯过热自动关闭", "声卡驱动异常"],
    "host-emergency": ["主播身体不适临时离场", "主播嗓子沙哑无法继续", "主播家中突发状况"],
    "content-violation": ["主播使用绝对化用语", "展示未备案商品", "背景出现违规画面"],
    "platform-outage": ["CDN 节点故障", "平台推流服务波动", "第三方支付回调异常"],
    "av-desync": ["音频采集缓冲设置错误", "编码器时间戳漂移", "蓝牙麦克风延迟"],
    "other": ["商品链接失效", "库存同步延迟", "弹幕刷屏"],
}
HANDLING = ["自动切到备用线路", "一键播放垫片并置顶公告", "场控安抚评论区并发放补偿券", "技术远程重启推流",
            "更换备用设备后恢复", "替补主播接档", "合规确认后恢复直播"]
OUTCOMES = ["观众基本无感知", "中断约 {m} 分钟,发放补偿", "恢复后在线人数回升", "当场恢复,无投诉", "影响约 {n} 名观众"]
KINDS = ["alert", "switch", "announcement", "host_cue", "control", "note", "step", "milestone"]


def _ts(dt):
    return dt.isoformat()


class Command(BaseCommand):
    help = "Generate incident history (COPY) for analytics benchmarks: rooms, live sessions, incidents, steps, timeline."

    def add_arguments(self, parser):
        parser.add_argument("--incidents", type=int, default=100_000)
        parser.add_argument("--entries", type=int, default=1_000_000)
        parser.add_argument("--rooms", type=int, default=40)
        parser.add_argument("--days", type=int, default=365)
        parser.add_argument("--steps-per-incident", type=int, default=3)
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument("--clear", action="store_true", help="delete a previous generated history first")

    def handle(self, *args, **opts):
        if connection.vendor != "postgresql":
            raise CommandError("seed_incident_history needs PostgreSQL (it writes with COPY).")
        if opts["incidents"] < 0 or opts["entries"] < 0 or opts["rooms"] < 1 or opts["days"] < 1:
            raise CommandError("--incidents/--entries must be >= 0, --rooms and --days >= 1.")
        rng = random.Random(opts["seed"])
        started = time.monotonic()
        with transaction.atomic():
            if opts["clear"]:
                self._clear()
            rooms = self._rooms(opts["rooms"])
            sessions = self._sessions(rng, rooms, opts["days"])
            self._progress("live sessions", len(sessions), started)
            ids = self._incidents(rng, sessions, opts["incidents"])
            self._progress("incidents", len(ids), started)
            n_steps = self._steps(rng, ids, opts["steps_per_incident"])
            self._progress("steps", n_steps, started)
            n_entries = self._entries(rng, ids, opts["entries"])
            self._progress("timeline entries", n_entries, started)
            rebuild_step_rollup()
            self._progress("step rollup", n_steps, started)
        with connection.cursor() as cursor:
            for table in ("incidents_incident", "incidents_incidentfact", "incidents_incidentstep",
                          "incidents_incidenttimelineentry",
                          "incidents_stepdurationdaily", "streams_livesession"):
                cursor.execute(f"VACUUM ANALYZE {table}")
        self.stdout.write(self.style.SUCCESS(f"done in {time.monotonic() - started:.1f} s"))

    def _progress(self, what, n, started):
        self.stdout.write(f"  {what}: {n:,} ({time.monotonic() - started:.1f} s)")

    def _clear(self):
        rooms = LiveRoom.objects.filter(slug__startswith="hist-")
        incidents = Incident.objects.filter(room__in=rooms)
        IncidentFact.objects.filter(incident__in=incidents)._raw_delete(connection.alias)
        IncidentTimelineEntry.objects.filter(incident__in=incidents)._raw_delete(connection.alias)
        IncidentStep.objects.filter(incident__in=incidents)._raw_delete(connection.alias)
        incidents._raw_delete(connection.alias)
        LiveSession.objects.filter(room__in=rooms)._raw_delete(connection.alias)

    def _rooms(self, count):
        rooms = []
        for n in range(1, count + 1):
            merchant = MERCHANTS[(n - 1) % len(MERCHANTS)]
            host = HOSTS[(n - 1) % len(HOSTS)]
            room, _ = LiveRoom.objects.get_or_create(
                slug=f"hist-{n:02d}", defaults={"name": f"{merchant} · {host} {n:02d}", "merchant": merchant,
                                                "host_name": host, "status": LiveRoom.Status.ENDED})
            rooms.append(room)
        return rooms

    def _copy(self, table, columns, rows):
        with connection.cursor() as cursor:
            with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

    def _sessions(self, rng, rooms, days):
        """One show per room per day: prime time, daytime or a late-night slot."""
        today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
        sessions = []
        for room in rooms:
            for d in range(days, 0, -1):
                if rng.random() < 0.15:
                    continue  # a day off
                slot = rng.random()
                start_hour = rng.choice([10, 11, 13, 14]) if slot < 0.3 else (
                    rng.choice([19, 20, 21]) if slot < 0.75 else rng.choice([22, 23, 0, 1]))
                start = today - timedelta(days=d) + timedelta(hours=start_hour, minutes=rng.choice([0, 15, 30]))
                end = start + timedelta(minutes=rng.randint(120, 360))
                night = start_hour >= 22 or start_hour < 8
                sessions.append((room.pk, start, end, night))
        self._copy("streams_livesession", ["room_id", "started_at", "ended_at"],
                   ((room_id, s, e) for room_id, s, e, _ in sessions))
        return sessions

    def _incidents(self, rng, sessions, count):
        types = {t.slug: t for t in IncidentType.objects.all()}
        runbooks = {rb.incident_type_id: rb.pk for rb in Runbook.objects.order_by("incident_type", "version")}
        share = {"weak-network": 30, "stream-interruption": 22, "device-failure": 16, "host-emergency": 6,
                 "content-violation": 4, "platform-outage": 3, "av-desync": 9, "other": 10}
        slugs = list(types)
        weights = [share.get(slug, 5) for slug in slugs]
        # Night shows fail about twice as often per hour.
        session_weights = [((e - s).total_seconds() / 3600) * (2.0 if night else 1.0) for _, s, e, night in sessions]
        picks = rng.choices(sessions, weights=session_weights, k=count)
        with connection.cursor() as cursor:
            cursor.execute("SELECT COALESCE(MAX(id), 0) FROM incidents_incident")
            first_id = cursor.fetchone()[0] + 1
        ids = []

        def rows():
            for n, (room_id, s, e, _) in enumerate(picks):
                pk = first_id + n
                slug = rng.choices(slugs, weights=weights)[0]
                itype = types[slug]
                detected = s + timedelta(seconds=rng.uniform(0, (e - s).total_seconds()))
                cancelled = rng.random() < 0.03
                drill = rng.random() < 0.02
                ack = detected + timedelta(seconds=rng.expovariate(1 / 75))
                mitigated = ack + timedelta(seconds=rng.expovariate(1 / 200)) if rng.random() < 0.85 else None
                resolved = (mitigated or ack) + timedelta(seconds=rng.expovariate(1 / 900))
                reviewed = resolved + timedelta(hours=rng.uniform(2, 72)) if rng.random() < 0.5 else None
                announce = detected + timedelta(seconds=rng.expovariate(1 / 100)) if rng.random() < 0.7 else None
                status = "cancelled" if cancelled else ("reviewed" if reviewed else "resolved")
                severity = max(1, min(4, itype.default_severity + rng.choice([-1, 0, 0, 0, 1])))
                cause = rng.choice(CAUSES.get(slug, CAUSES["other"]))
                ids.append((pk, detected, resolved, slug))
                yield (pk, room_id, itype.pk, severity, status, f"{itype.name}:{cause[:30]}", drill,
                       detected, ack, mitigated, None if cancelled else resolved,
                       None if cancelled else reviewed, cause, rng.choice(HANDLING),
                       rng.choice(OUTCOMES).format(m=rng.randint(1, 15), n=rng.randint(50, 5000)),
                       json.dumps({"viewers": rng.randint(20, 8000), "program_source": "primary"}),
                       "drill" if drill else rng.choice(["auto_failover", "manual", "line_down", "alert"]),
                       runbooks.get(itype.pk), announce)

        self._copy("incidents_incident",
                   ["id", "room_id", "incident_type_id", "severity", "status", "title", "is_drill", "detected_at",
                    "acknowledged_at", "mitigated_at", "resolved_at", "reviewed_at", "cause", "handling", "outcome",
                    "context", "source", "runbook_id", "first_announcement_at"],
                   rows())
        with connection.cursor() as cursor:
            cursor.execute("SELECT setval(pg_get_serial_sequence('incidents_incident', 'id'), "
                           "(SELECT MAX(id) FROM incidents_incident))")
        return ids

    def _steps(self, rng, ids, per_incident):
        titles = {}
        for t in IncidentType.objects.all():
            rb = t.current_runbook()
            titles[t.slug] = [(s.role, s.position, s.title) for s in rb.steps.all()] if rb else []
        count = 0

        def rows():
            nonlocal count
            for pk, detected, resolved, slug in ids:
                steps = titles.get(slug) or []
                if not steps:
                    continue
                clock = detected
                for role, position, title in rng.sample(steps, min(per_incident, len(steps))):
                    # Calling people (替补/合规/平台) is slow; one-click actions are fast.
                    scale = 300 if any(w in title for w in ("呼叫", "通知", "联系", "确认")) else 45
                    duration = rng.expovariate(1 / scale)
                    clock = clock + timedelta(seconds=duration)
                    count += 1
                    yield (pk, role, position, title, "", "", "", clock, int(duration * 1000))

        self._copy("incidents_incidentstep",
                   ["incident_id", "role", "position", "title", "instructions", "action", "action_param",
                    "completed_at", "duration_ms"], rows())
        return count

    def _entries(self, rng, ids, total):
        if not ids or total <= 0:
            return 0
        per = total // len(ids)
        extra = total - per * len(ids)

        def rows():
            for n, (pk, detected, resolved, _) in enumerate(ids):
                k = per + (1 if n < extra else 0)
                span = max(1.0, (resolved - detected).total_seconds())
                for j in range(k):
                    at = detected + timedelta(seconds=span * j / max(k, 1))
                    kind = KINDS[j % len(KINDS)] if j else "detection"
                    yield (pk, at, kind, f"{kind} #{j}", "system", "{}", False)

        self._copy("incidents_incidenttimelineentry", ["incident_id", "at", "kind", "text", "actor_label", "data",
                                                       "pinned"], rows())
        return total
