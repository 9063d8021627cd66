from django.contrib import admin

from .models import (
    Incident,
    IncidentReview,
    IncidentStep,
    IncidentTimelineEntry,
    IncidentType,
    ReviewActionItem,
    Runbook,
    RunbookStep,
)


@admin.register(IncidentType)
class IncidentTypeAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "default_severity")


class RunbookStepInline(admin.TabularInline):
    model = RunbookStep
    extra = 0

    def has_change_permission(self, request, obj=None):
        return False  # published versions are immutable; publish a new one from /incidents/types/


@admin.register(Runbook)
class RunbookAdmin(admin.ModelAdmin):
    list_display = ("incident_type", "version", "created_at", "created_by", "summary")
    list_filter = ("incident_type",)
    inlines = [RunbookStepInline]


class IncidentStepInline(admin.TabularInline):
    model = IncidentStep
    extra = 0
    fields = ("role", "position", "title", "action", "completed_at", "completed_by", "duration_ms")
    readonly_fields = fields


class TimelineInline(admin.TabularInline):
    model = IncidentTimelineEntry
    extra = 0
    fields = ("at", "kind", "text", "actor", "actor_label", "pinned")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "room", "incident_type", "severity", "status", "detected_at", "is_drill")
    list_filter = ("status", "severity", "incident_type", "is_drill")
    search_fields = ("title", "cause", "handling", "outcome")
    inlines = [IncidentStepInline, TimelineInline]
    # Status and milestones change only through the audited services (metrics stay honest).
    readonly_fields = ("status", "detected_at", "acknowledged_at", "mitigated_at", "resolved_at", "reviewed_at",
                       "first_announcement_at", "context", "source", "runbook", "is_drill")


class ActionItemInline(admin.TabularInline):
    model = ReviewActionItem
    extra = 0


@admin.register(IncidentReview)
class IncidentReviewAdmin(admin.ModelAdmin):
    list_display = ("incident", "signed_off_at", "signed_off_by")
    inlines = [ActionItemInline]
