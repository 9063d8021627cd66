from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("wall/grid", views.wall_grid, name="wall_grid"),
    path("wall/mute", views.toggle_mute, name="wall_mute"),
    path("wall/arrangement", views.wall_arrangement, name="wall_arrangement"),
    path("alerts/<int:alert_id>/ack", views.acknowledge_alert, name="acknowledge_alert"),
    path("alerts/rooms/<slug:slug>/ack", views.acknowledge_room_alerts, name="acknowledge_room_alerts"),
    path("alerts/rooms/<slug:slug>/snooze", views.snooze_room_alerts, name="snooze_room_alerts"),
    path("alerts/rooms/<slug:slug>/unsnooze", views.unsnooze_room_alerts, name="unsnooze_room_alerts"),
    path("rooms/<slug:slug>/", views.room_detail, name="room_detail"),
    path("rooms/<slug:slug>/history", views.room_history, name="room_history"),
    path("rooms/<slug:slug>/thumbnail.jpg", views.room_thumbnail, name="room_thumbnail"),
    path("live/<slug:slug>", views.live_room, name="live_room"),
    path("api/rooms/<slug:slug>/announcements", views.announcements_json, name="announcements_json"),
    path("cue/<slug:slug>", views.cue_screen, name="cue_screen"),
    path("audit/", views.audit, name="audit"),
    path("audit.csv", views.audit_csv, name="audit_csv"),
    path("announcement-templates/", views.announcement_templates, name="announcement_templates"),
]

# WHIP ingest / WHEP playback (media worker signalling)
from . import signalling  # noqa: E402

urlpatterns += [
    path("whip/<slug:room_slug>/<str:line_role>", signalling.whip, name="whip"),
    path("whip/<slug:room_slug>/<str:line_role>/<str:session_id>", signalling.whip_session, name="whip_session"),
    path("whep/<slug:room_slug>", signalling.whep, name="whep"),
    path("whep/<slug:room_slug>/<str:session_id>", signalling.whep_session, name="whep_session"),
]

from . import media_views  # noqa: E402

urlpatterns += [
    path("rooms/<slug:slug>/demo-fault", media_views.demo_fault, name="demo_fault"),
]

from . import push_views  # noqa: E402

urlpatterns += [
    path("rooms/<slug:slug>/push/", push_views.push_destinations, name="push_destinations"),
    path("rooms/<slug:slug>/push/<int:pk>/edit", push_views.push_destination_edit, name="push_destination_edit"),
    path("rooms/<slug:slug>/push/<int:pk>/delete", push_views.push_destination_delete, name="push_destination_delete"),
]

from . import rtmp_ingest_views  # noqa: E402

urlpatterns += [
    path("rtmp/edge/on_publish", rtmp_ingest_views.on_publish, name="rtmp_on_publish"),
    path("rtmp/edge/on_publish_done", rtmp_ingest_views.on_publish_done, name="rtmp_on_publish_done"),
]
