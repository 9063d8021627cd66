from django.contrib import admin

from .models import Budget, Campaign, ShopClient


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    list_display = ("name", "room", "total_fen", "reserved_fen", "per_viewer_cap_fen", "approval_threshold_fen")
    readonly_fields = ("reserved_fen",)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("pk", "title", "kind", "room", "status", "eligible_count", "cost_fen", "issued_count")
    list_filter = ("kind", "status")
    # State changes go through the services (audited, budget-locked), never through the admin.
    readonly_fields = [f.name for f in Campaign._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(ShopClient)
class ShopClientAdmin(admin.ModelAdmin):
    list_display = ("name", "merchant", "token_hint", "is_active", "created_at")
    readonly_fields = ("token_hint",)
