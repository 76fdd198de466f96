from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import BaseUserCreationForm, UserChangeForm
from django.http import HttpRequest

from apps.users.models import Role, User


class EmailUserCreationForm(BaseUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "role")


class EmailUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class EmailUserAdmin(DjangoUserAdmin):
    """Users who sign in with their email address."""

    form = EmailUserChangeForm
    add_form = EmailUserCreationForm
    ordering = ["email"]
    list_display = ["email", "name", "role", "is_active", "is_staff", "last_login"]
    list_filter = ["role", "is_active", "is_staff"]
    search_fields = ["email", "name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("name", "time_zone", "role")}),
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("History", {"fields": ("last_login", "last_login_ip", "created_at")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "role", "password1", "password2")}),)
    readonly_fields = ["last_login", "last_login_ip", "created_at"]


class AgencyUserAdmin(EmailUserAdmin):
    """An agency's users in its own admin: profiles only. Roles, access and deactivation happen on
    the Team page (apps.team.services), which keeps the rules: the last owner stays, flags follow
    the role, and every change is audited. (The operators' site keeps EmailUserAdmin.)"""

    readonly_fields = [
        "role",
        "is_active",
        "is_staff",
        "is_superuser",
        "groups",
        "user_permissions",
        *EmailUserAdmin.readonly_fields,
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Only an owner changes an owner (email, password included): an admin who could would
        take the agency over with a password reset. Admins see owners read-only."""
        if obj is not None and obj.role == Role.OWNER and request.user.role != Role.OWNER:  # type: ignore[union-attr]
            return False
        return super().has_change_permission(request, obj)


admin.site.register(User, AgencyUserAdmin)
