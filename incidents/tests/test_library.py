"""Case library: filters (Chinese free text included), CSV exports, access control."""

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from incidents import services
from incidents.models import Incident, IncidentType
from streams.models import LiveRoom

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def cases(room):
    snacks = LiveRoom.objects.create(name="零食节 · 阿杰", slug="snacks-02", merchant="好味零食铺", host_name="阿杰")

    def case(r, slug, when, cause, handling, outcome, severity=3, status="resolved", drill=False, title="案例"):
        return Incident.objects.create(
            room=r, incident_type=IncidentType.objects.get(slug=slug), severity=severity, status=status,
            is_drill=drill, title=title, detected_at=when, cause=cause, handling=handling, outcome=outcome)

    return {
        "router": case(room, "stream-interruption", datetime(2026, 3, 2, 23, 10, tzinfo=SH),
                       "机房路由器重启导致主线路断流", "自动切到备用线路,路由器恢复后切回", "观众无感知,中断 0.3 秒",
                       severity=2, title="夜间断流"),
        "mic": case(snacks, "device-failure", datetime(2026, 3, 3, 14, 0, tzinfo=SH),
                    "主播麦克风电池耗尽", "场控递上备用麦克风", "静音 40 秒", title="麦克风没电"),
        "host": case(snacks, "host-emergency", datetime(2026, 3, 5, 3, 0, tzinfo=SH),
                     "主播身体不适", "播放预录商品视频垫片,替补主播接档", "替补 6 分钟到位,发放补偿券",
                     severity=1, title="主播突发不适"),
        "drill": case(room, "stream-interruption", datetime(2026, 3, 4, 10, 0, tzinfo=SH),
                      "演练:拔掉主线路网线", "按预案切换", "用时 2 分钟", drill=True, title="断流演练"),
    }


def ids(response):
    return sorted(i.pk for i in response.context["page"].object_list)


def test_library_is_for_managers(client, cases, operator, manager, outsider):
    for person in (operator, outsider):
        client.force_login(person)
        assert client.get("/incidents/").status_code == 403
        assert client.get("/incidents/export.csv").status_code == 403
    client.force_login(manager)
    response = client.get("/incidents/")
    assert response.status_code == 200
    assert ids(response) == sorted(c.pk for k, c in cases.items() if k != "drill")  # drills kept apart


def test_chinese_free_text_matches_cause_handling_and_outcome(client, cases, manager):
    client.force_login(manager)
    assert ids(client.get("/incidents/", {"q": "路由器"})) == [cases["router"].pk]           # cause
    assert ids(client.get("/incidents/", {"q": "备用麦克风"})) == [cases["mic"].pk]          # handling
    assert ids(client.get("/incidents/", {"q": "补偿券"})) == [cases["host"].pk]             # outcome
    assert ids(client.get("/incidents/", {"q": "垫片 替补"})) == [cases["host"].pk]          # all words
    assert ids(client.get("/incidents/", {"q": "切换", "drill": "1"})) == [cases["drill"].pk]
    assert ids(client.get("/incidents/", {"q": "卫星"})) == []


def test_structured_filters(client, cases, manager):
    client.force_login(manager)
    get = lambda **p: ids(client.get("/incidents/", p))  # noqa: E731
    assert get(room="snacks-02") == sorted([cases["mic"].pk, cases["host"].pk])
    assert get(merchant="测试商家") == [cases["router"].pk]
    assert get(type="device-failure") == [cases["mic"].pk]
    assert get(severity="1") == [cases["host"].pk]
    assert get(status="resolved", date_from="2026-03-03", date_to="2026-03-04") == [cases["mic"].pk]
    # Night shift 22:00-08:00 Beijing time: 23:10 and 03:00 are night, 14:00 is day.
    assert get(shift="night") == sorted([cases["router"].pk, cases["host"].pk])
    assert get(shift="day") == [cases["mic"].pk]
    assert get(shift="night", night_start="0", night_end="6") == [cases["host"].pk]


def test_htmx_filter_returns_only_the_results_partial(client, cases, manager):
    client.force_login(manager)
    html = client.get("/incidents/", {"q": "麦克风"}, HTTP_HX_REQUEST="true").content.decode()
    assert html.lstrip().startswith('<section id="library-results"') and "麦克风没电" in html
    assert "<html" not in html


def test_csv_export_of_the_filtered_list(client, cases, manager):
    client.force_login(manager)
    response = client.get("/incidents/export.csv", {"room": "snacks-02"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    header, body = rows[0], rows[1:]
    assert header[:3] == ["id", "标题", "直播间"] and header[-3:] == ["原因", "处理过程", "结果"]
    assert sorted(int(r[0]) for r in body) == sorted([cases["mic"].pk, cases["host"].pk])
    host = next(r for r in body if int(r[0]) == cases["host"].pk)
    assert host[1:6] == ["主播突发不适", "零食节 · 阿杰", "好味零食铺", "主播突发状况", "SEV1"]
    assert host[8] == "2026-03-05 03:00:00"  # Beijing time
    assert host[-3:] == ["主播身体不适", "播放预录商品视频垫片,替补主播接档", "替补 6 分钟到位,发放补偿券"]


def test_csv_export_of_a_timeline(client, room, operator, manager):
    incident = services.open_incident(room=room, incident_type="weak-network", actor=operator)
    services.add_note(incident=incident, text="主线路丢包 12%,已联系现场", actor=operator)
    services.transition(incident=incident, to="acknowledged", actor=operator)
    client.force_login(manager)
    response = client.get(f"/incidents/{incident.pk}/timeline.csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["时间", "类型", "内容", "操作人", "置顶"]  # no internal data column
    kinds = [r[1] for r in rows[1:]]
    assert kinds == ["发现", "备注", "里程碑"]
    note = rows[2]
    assert note[2] == "主线路丢包 12%,已联系现场" and note[3] == "olivia_ops"
    assert rows[3][2] == "状态:已发现 → 已响应"
    # The same export in English: what the system wrote is rendered in the reader's language.
    client.cookies["django_language"] = "en"
    rows = list(csv.reader(io.StringIO(client.get(f"/incidents/{incident.pk}/timeline.csv").content
                                       .decode("utf-8-sig"))))
    assert rows[3][2] == "Status: Detected → Acknowledged" and rows[2][2] == "主线路丢包 12%,已联系现场"


def test_case_detail_page_shows_record_context_timeline_and_step_durations(client, room, operator, manager):
    incident = services.open_incident(room=room, incident_type="stream-interruption", actor=operator)
    step = incident.steps.filter(role="ops").order_by("position").first()
    services.complete_step(step=step, actor=operator, run_action=False)
    client.force_login(manager)
    html = client.get(f"/incidents/{incident.pk}/").content.decode()
    assert incident.title in html and "发现时直播现场" in html and "小测" in html
    assert "时间线" in html and "完成步骤" in html and "用时" in html
    assert "修正里程碑时间" in html  # manager tools


def test_csv_export_defuses_spreadsheet_formulas(client, room, manager):
    Incident.objects.create(room=room, incident_type=IncidentType.objects.get(slug="other"), title="=HYPERLINK(1)",
                            status="resolved", cause="@SUM(A1)", handling="正常文本", outcome="-1")
    client.force_login(manager)
    rows = list(csv.reader(io.StringIO(client.get("/incidents/export.csv").content.decode("utf-8-sig"))))
    row = rows[1]
    assert row[1] == "'=HYPERLINK(1)" and row[-3:] == ["'@SUM(A1)", "正常文本", "'-1"]
