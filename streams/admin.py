from django.contrib import admin

from .models import (Alert, ControlAction, HealthSample, IngestLine, LiveRoom, LiveSession, MediaWorkerLease,
                     SlateAsset, Viewer, ViewerSession)


class IngestLineInline(admin.TabularInline):
    model = IngestLine
    extra = 0
    fields = ("role", "kind", "state", "token_hint", "state_changed_at")
    # the protocol changes through the audited service (manage.py ingest_line), not here
    readonly_fields = ("kind", "token_hint", "state", "state_changed_at")


@admin.register(LiveRoom)
class LiveRoomAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "merchant", "host_name", "status", "program_source", "auto_failover")
    list_filter = ("status", "program_source", "merchant")
    search_fields = ("name", "slug", "merchant", "host_name")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [IngestLineInline]


@admin.register(IngestLine)
class IngestLineAdmin(admin.ModelAdmin):
    list_display = ("room", "role", "kind", "state", "token_hint", "state_changed_at")
    list_filter = ("role", "kind", "state")
    readonly_fields = ("kind", "token_hint")


admin.site.register(SlateAsset)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Audit and measurement rows are history: viewable, never editable."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ControlAction)
class ControlActionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor", "actor_label", "room", "action", "target", "outcome", "latency_ms")
    list_filter = ("action", "outcome", "room")
    search_fields = ("action", "target", "reason", "actor__username")
    date_hierarchy = "created_at"


@admin.register(HealthSample)
class HealthSampleAdmin(ReadOnlyAdmin):
    list_display = ("at", "room", "line_role", "connected", "bitrate_kbps", "fps", "loss_pct", "jitter_ms")
    list_filter = ("line_role", "room")


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("raised_at", "room", "kind", "severity", "message", "count", "last_seen_at", "acknowledged_by",
                    "acknowledged_at")
    list_filter = ("kind", "severity", "room")


admin.site.register(LiveSession, ReadOnlyAdmin)
admin.site.register(Viewer)
admin.site.register(ViewerSession, ReadOnlyAdmin)
admin.site.register(MediaWorkerLease, ReadOnlyAdmin)


# --- wall issue: announcements, templates, canned replies, cues -------------------------------------
from .models import Announcement, AnnouncementTemplate, CannedReply, HostCue  # noqa: E402


@admin.register(AnnouncementTemplate)
class AnnouncementTemplateAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "text", "default_eta_minutes", "is_active")
    list_filter = ("kind", "is_active")


@admin.register(CannedReply)
class CannedReplyAdmin(admin.ModelAdmin):
    list_display = ("title", "text", "position", "is_active")


@admin.register(Announcement)
class AnnouncementAdmin(admin.ModelAdmin):
    list_display = ("room", "text", "kind", "pinned_at", "pinned_by", "unpinned_at", "unpinned_by")
    list_filter = ("kind",)
    readonly_fields = [f.name for f in Announcement._meta.fields]  # written by the services (audited)


@admin.register(HostCue)
class HostCueAdmin(admin.ModelAdmin):
    list_display = ("room", "text", "sent_by", "sent_at", "acknowledged_at")
    readonly_fields = [f.name for f in HostCue._meta.fields]
