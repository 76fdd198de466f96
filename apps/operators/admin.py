"""The operators' audit log in the operators' admin: to read, never to change."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.operators.models import OperatorAuditLog
from tenants.admin import operator_site


@admin.register(OperatorAuditLog, site=operator_site)
class OperatorAuditLogAdmin(admin.ModelAdmin):
    list_display = ["created_at", "action", "agency_slug", "operator_email", "reason"]
    list_filter = ["action"]
    search_fields = ["agency_slug", "agency_name", "operator_email"]
    list_select_related = False
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
