from django.urls import path

from . import views

app_name = "incidents"

urlpatterns = [
    path("", views.library, name="library"),
    path("export.csv", views.library_csv, name="library_csv"),
    path("new", views.new, name="new"),
    path("open/", views.open_list, name="open_list"),
    path("duty/", views.duty, name="duty"),
    path("duty/shifts", views.duty_add, name="duty_add"),
    path("duty/shifts/<int:shift_id>/remove", views.duty_remove, name="duty_remove"),
    path("duty/robots", views.robot_save, name="robot_add"),
    path("duty/robots/<int:robot_id>", views.robot_save, name="robot_save"),
    path("duty/robots/<int:robot_id>/test", views.robot_test, name="robot_test"),
    path("claim/<str:token>/", views.claim, name="claim"),
    path("declare", views.declare, name="declare"),
    path("analytics/", views.analytics_page, name="analytics"),
    path("analytics.csv", views.analytics_csv, name="analytics_csv"),
    path("types/", views.types, name="types"),
    path("types/<slug:slug>/", views.edit_type, name="edit_type"),
    path("room/<slug:slug>/panel", views.room_panel, name="room_panel"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/take", views.take, name="take"),
    path("<int:pk>/merge", views.merge, name="merge"),
    path("<int:pk>/timeline", views.timeline_part, name="timeline"),
    path("<int:pk>/timeline.csv", views.timeline_csv, name="timeline_csv"),
    path("<int:pk>/transition", views.do_transition, name="transition"),
    path("<int:pk>/case", views.update_case, name="update_case"),
    path("<int:pk>/meta", views.update_meta, name="update_meta"),
    path("<int:pk>/correct", views.correct, name="correct"),
    path("<int:pk>/notes", views.add_note, name="add_note"),
    path("<int:pk>/entries/<int:entry_id>/pin", views.pin_entry, name="pin_entry"),
    path("<int:pk>/steps/<int:step_id>/complete", views.complete_step, name="complete_step"),
    path("<int:pk>/review", views.review, name="review"),
    path("<int:pk>/drill-report", views.drill_report, name="drill_report"),
]
