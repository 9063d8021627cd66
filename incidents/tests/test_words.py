"""The control room in its users' words: what the system writes, in the reader's language, without codes."""

from datetime import timedelta

import pytest
from django.apps import apps
from django.utils import timezone, translation

from incidents import backfill, services
from incidents.models import Incident, IncidentStep, IncidentTimelineEntry, StepDurationDaily
from streams import services as stream_services

# Timeline mirrors of control actions run after commit: these tests commit.
pytestmark = pytest.mark.django_db(transaction=True)


def page(client, user, url, language):
    client.force_login(user)
    client.cookies["django_language"] = language
    return client.get(url).content.decode()


def test_timeline_runbook_type_and_title_follow_the_readers_language(client, room, operator, tech_support):
    incident = services.open_incident(room=room, incident_type="stream-interruption", actor=operator)
    step = incident.steps.get(role="tech_support", position=1)
    services.complete_step(step=step, actor=tech_support, run_action=False)
    services.transition(incident=incident, to="acknowledged", actor=operator)
    stream_services.record_action(actor=None, actor_label="auto", action="switch_source", room=room, target="backup",
                                  reason="auto:input_loss", latency_ms=84.4,
                                  detail={"from": "primary", "to": "backup"})

    english = page(client, operator, f"/incidents/{incident.pk}/", "en")
    assert f"{room.name} · Stream interruption" in english  # generated title, type
    assert "Check the encoder (OBS) and the studio network" in english  # runbook step
    assert "Completed step [Tech support] 1. Check the encoder (OBS) and the studio network" in english
    assert "Status: Detected → Acknowledged" in english
    assert "Program source switched Primary line → Backup line" in english
    # No codes, no Chinese of the system's own making.
    for leak in ("input_loss", "auto:", "switch_source", "完成步骤", "状态:", "断流", "切换节目源", ">auto<", ">system<"):
        assert leak not in english, leak

    chinese = page(client, operator, f"/incidents/{incident.pk}/", "zh-hans")
    assert f"{room.name} · 断流" in chinese and "检查推流端(OBS/编码器)与现场网络状态" in chinese
    assert "完成步骤【技术支持】1. 检查推流端(OBS/编码器)与现场网络状态" in chinese
    assert "状态:已发现 → 已响应" in chinese and "切换节目源 主线路 → 备用线路" in chinese
    assert "input_loss" not in chinese and "auto:" not in chinese
    # Search keeps working on the stored (Chinese) text.
    assert IncidentTimelineEntry.objects.filter(incident=incident, text__contains="切换节目源").exists()


def test_entries_written_before_messages_get_theirs_from_their_data(room, operator, tech_support):
    incident = services.open_incident(room=room, incident_type="weak-network", actor=operator)
    step = incident.steps.get(role="tech_support", position=1)
    services.complete_step(step=step, actor=tech_support, run_action=False)
    services.transition(incident=incident, to="acknowledged", actor=operator, reason="现场确认")
    # As the old code stored them: Chinese text only, no message.
    for entry in IncidentTimelineEntry.objects.filter(incident=incident):
        IncidentTimelineEntry.objects.filter(pk=entry.pk).update(
            data={k: v for k, v in entry.data.items() if k != "msg"})
    Incident.objects.filter(pk=incident.pk).update(title_msg={})
    IncidentStep.objects.filter(incident=incident).update(title_en="")

    backfill.run(apps, None)

    with translation.override("en"):
        texts = [e.display_text for e in IncidentTimelineEntry.objects.filter(incident=incident).order_by("at", "id")]
        assert Incident.objects.get(pk=incident.pk).display_title == f"{room.name} · Lagging / weak network"
    assert texts[1].startswith("Completed step [Tech support] 1. Check bitrate, loss and jitter")
    assert texts[2] == "Status: Detected → Acknowledged (现场确认)"


def test_step_duration_counts_from_when_the_step_became_available(room, tech_support):
    incident = services.open_incident(room=room, incident_type="stream-interruption", actor=tech_support)
    # Detected long before the checklist existed (a manager moved detection earlier, or it was found late).
    Incident.objects.filter(pk=incident.pk).update(detected_at=timezone.now() - timedelta(minutes=10))
    steps = list(incident.steps.filter(role="tech_support").order_by("position"))
    third, _err = services.complete_step(step=steps[2], actor=tech_support, run_action=False)
    second, _err = services.complete_step(step=steps[1], actor=tech_support, run_action=False)
    assert third.duration_ms < 60_000  # not ten minutes
    # Done after a later step: counted from availability, not from the later step's completion.
    expected = (second.completed_at - second.available_at).total_seconds() * 1000
    assert abs(second.duration_ms - expected) <= 1
    rows = StepDurationDaily.objects.filter(role="tech_support")
    assert sum(r.n for r in rows) == 2 and max(r.max_ms for r in rows) < 60_000


def test_a_single_week_of_data_draws_a_trend_and_rates_are_rounded_for_people(client, room, operator, manager):
    incident = services.open_incident(room=room, incident_type="weak-network", actor=operator)
    services.transition(incident=incident, to="acknowledged", actor=operator)
    client.force_login(manager)
    html = client.get("/incidents/analytics/?days=7").content.decode()
    trend = html[html.index('class="chart trend"'):]
    trend = trend[:trend.index("</svg>")]
    assert '<circle cx="320.0"' in trend  # the lone week, in the middle, as a visible point
    from incidents.templatetags.figures import human_number

    assert [human_number(v) for v in (6.2593, 0.012345, 123.4, 0, None)] == ["6.3", "0.012", "123", "0", "—"]


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_control_room_pages_show_no_codes_slugs_or_utc_stamps(client, room, operator, tech_support, manager, language):
    from django.urls import reverse

    incident = services.open_incident(room=room, incident_type="stream-interruption", actor=operator)
    stream_services.record_action(actor=None, actor_label="auto", action="switch_source", room=room, target="backup",
                                  reason="auto:input_loss", latency_ms=84.0, detail={"from": "primary", "to": "backup"})
    services.complete_step(step=incident.steps.get(role="tech_support", position=1), actor=tech_support,
                           run_action=False)
    client.force_login(manager)
    client.cookies["django_language"] = language
    for url in (f"/incidents/{incident.pk}/", "/incidents/", "/incidents/types/", "/incidents/new",
                f"/incidents/{incident.pk}/timeline.csv", reverse("audit"), reverse("audit_csv"),
                f"/incidents/room/{room.slug}/panel"):
        response = client.get(url)
        assert response.status_code == 200, url
        body = (b"".join(response.streaming_content) if response.streaming else response.content).decode("utf-8-sig")
        for leak in ("input_loss", "auto:", ">switch_source<", ">auto<", ">system<", "+00:00", "T12:", "---------",
                     f">{room.slug}<", ",test-room,"):
            assert leak not in body, (url, leak)
