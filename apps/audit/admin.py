from __future__ import annotations

import functools
from typing import Any

from django.contrib import admin
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from apps.audit.models import AuditLog
from apps.audit.services import admin_entries_recorded_by_caller, audit_admin_deletions


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    """Read-only: the database refuses changes to this table anyway."""

    list_display = ["created_at", "action", "actor_email", "object_type", "object_repr", "ip"]
    list_filter = ["action", "object_type"]
    search_fields = ["action", "actor_email", "object_id", "object_repr"]
    date_hierarchy = "created_at"
    list_select_related = ["actor"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@functools.wraps(django_delete_selected)  # its description and "delete" permission too
def delete_selected(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> HttpResponse | None:
    """Django's bulk delete, audited: Django logs more than one deletion with bulk_create,
    which sends no post_save, so the entries of this action are recorded here, all of them."""
    objects = list(queryset)
    with admin_entries_recorded_by_caller():
        response = django_delete_selected(modeladmin, request, queryset)
    if response is None:  # deleted; otherwise it is the confirmation page
        audit_admin_deletions(objects=objects, request=request)
    return response


# Every model of the agency admin: the site-wide action, replaced under its own name.
admin.site.add_action(delete_selected, "delete_selected")
