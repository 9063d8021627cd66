from django.urls import path

from . import views

app_name = "compensation"

urlpatterns = [
    path("", views.campaign_list, name="list"),
    path("new", views.campaign_new, name="new"),
    path("wall/", views.wall_fragment, name="wall"),
    path("audience/import", views.audience_import, name="audience_import"),
    path("<int:campaign_id>/", views.campaign_detail, name="detail"),
    path("<int:campaign_id>/progress", views.campaign_progress, name="progress"),
    path("<int:campaign_id>/panel", views.campaign_panel, name="panel"),
    path("<int:campaign_id>/approve", views.campaign_approve, name="approve"),
    path("<int:campaign_id>/issue", views.campaign_issue, name="issue"),
    path("<int:campaign_id>/cancel", views.campaign_cancel, name="cancel"),
    path("<int:campaign_id>/revoke", views.campaign_revoke, name="revoke"),
    path("<int:campaign_id>/draw", views.campaign_draw, name="draw"),
    path("<int:campaign_id>/grants.csv", views.grants_csv, name="grants_csv"),
    path("incidents/<int:incident_id>/report", views.incident_report, name="incident_report"),
    # Public
    path("draws/<int:campaign_id>/verify", views.draw_verify, name="verify"),
    path("draws/<int:campaign_id>/entrants.txt", views.draw_entrants, name="entrants"),
    # Viewer page
    path("<int:campaign_id>/join", views.viewer_join, name="join"),
    path("<int:campaign_id>/claim", views.viewer_claim, name="claim"),
    path("live/<slug:slug>/offers", views.viewer_offers, name="viewer_offers"),
    # Shop API
    path("api/v1/coupons/validate", views.api_validate, name="api_validate"),
    path("api/v1/coupons/redeem", views.api_redeem, name="api_redeem"),
    path("api/v1/campaigns/<int:campaign_id>/report", views.api_report, name="api_report"),
    path("api/v1/rooms/<slug:slug>/audience", views.api_audience, name="api_audience"),
]
