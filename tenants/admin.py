"""The operators' admin on the root domain: agencies, their domains, operators."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html

from apps.users.admin import EmailUserAdmin
from apps.users.models import User
from tenants.models import Agency, Domain, Plan
from tenants.services import (
    agency_audit_operator_action,
    agency_confirm_email,
    agency_create,
    agency_delete,
    agency_reactivate,
    agency_status_reason_check,
    agency_suspend,
)


class OperatorAdminSite(admin.AdminSite):
    """Operators only, signed in with two steps (apps.mfa sends them to set it up or to their code)."""

    site_header = "Postline operations"
    site_title = "Postline operations"
    index_title = "Agencies and operators"
    # Its index links to the operator console (apps.operators).
    index_template = "admin/operator_index.html"

    def has_permission(self, request: HttpRequest) -> bool:
        return super().has_permission(request) and bool(request.user.is_verified())  # type: ignore[union-attr]


operator_site = OperatorAdminSite(name="operator_admin")


class AgencyCreationForm(forms.ModelForm):
    """Everything a working agency needs, checked by the same service the command uses."""

    owner_email = forms.EmailField(help_text="The agency's first user, its owner.")
    owner_password = forms.CharField(widget=forms.PasswordInput(render_value=False), strip=False)

    class Meta:
        model = Agency
        fields = ["name", "slug", "plan"]
        help_texts = {"slug": "The agency's address: <slug>.<platform domain>. Cannot be changed later."}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            self.instance = agency_create(
                slug=data["slug"],
                name=data["name"],
                plan=data.get("plan") or Plan.TRIAL,
                owner_email=data["owner_email"],
                owner_password=data["owner_password"],
                operator=getattr(self, "operator", None),
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        return data

    def _post_clean(self) -> None:
        # The service validated and saved the instance; the slug's uniqueness check
        # would now find the agency it just made.
        pass

    def save(self, commit: bool = True) -> Agency:
        return self.instance

    def save_m2m(self) -> None:
        pass


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


@admin.register(Agency, site=operator_site)
class AgencyAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "plan", "status", "created_at", "site_link"]
    list_filter = ["status", "plan"]
    search_fields = ["name", "slug", "domains__domain"]
    readonly_fields = [
        "slug",
        "schema_name",
        "status",
        "created_at",
        "email_verified_at",
        "status_changed_at",
        "deleted_at",
        "site_link",
    ]
    fields = [
        "name",
        "slug",
        "schema_name",
        "plan",
        "status",
        "site_link",
        "created_at",
        "email_verified_at",
        "status_changed_at",
        "deleted_at",
    ]
    inlines = [DomainInline]
    actions = ["suspend", "reactivate", "delete_agencies", "confirm_email"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            # A class per request, so the operator never leaks between requests.
            return type("AgencyCreationForm", (AgencyCreationForm,), {"operator": request.user})
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["name", "slug", "plan", "owner_email", "owner_password"]
        return self.fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [] if obj is None else self.readonly_fields

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> Any:
        return [] if obj is None else self.inlines

    def save_model(self, request: HttpRequest, obj: Agency, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            changes = {
                field: {"old": form.initial.get(field), "new": form.cleaned_data.get(field)}
                for field in form.changed_data
            }
            if changes:
                agency_audit_operator_action(
                    agency=obj, action="settings.changed", operator=request.user, changes=changes
                )
        # New agencies were saved by agency_create in the form's clean(), which audits it.

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        if formset.model is Domain:
            for domain in formset.new_objects:
                _audit_domain(request, domain, "domain.added")
            for domain, changed in formset.changed_objects:
                _audit_domain(request, domain, "domain.changed", changed)
            for domain in formset.deleted_objects:
                _audit_domain(request, domain, "domain.removed")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting is a status with a grace period (the action below), never a row delete.
        return False

    @admin.display(description="Site")
    def site_link(self, obj: Agency) -> str:
        if not obj.slug:
            return "-"
        return format_html('<a href="{}">{}</a>', obj.url, obj.url)

    @admin.action(description="Suspend selected agencies")
    def suspend(self, request: HttpRequest, queryset: QuerySet[Agency]) -> HttpResponse | None:
        return self._change_status(request, queryset, "suspend", agency_suspend, "Suspend", "Suspended")

    @admin.action(description="Reactivate selected agencies")
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Agency]) -> HttpResponse | None:
        return self._change_status(
            request, queryset, "reactivate", agency_reactivate, "Reactivate", "Reactivated"
        )

    @admin.action(description="Delete selected agencies (their sites close at once)")
    def delete_agencies(self, request: HttpRequest, queryset: QuerySet[Agency]) -> HttpResponse | None:
        return self._change_status(request, queryset, "delete_agencies", agency_delete, "Delete", "Deleted")

    def _change_status(
        self,
        request: HttpRequest,
        queryset: QuerySet[Agency],
        action: str,
        service: Callable[..., Agency],
        verb: str,
        done: str,
    ) -> HttpResponse | None:
        """Ask for the reason first (a page like the admin's delete confirmation); the services
        refuse an operator's change without one, and email it to each agency's owners."""
        agencies = list(queryset)
        error = ""
        if request.POST.get("reason_given"):
            reason = request.POST.get("reason", "")
            try:
                agency_status_reason_check(request.user, reason)
            except ValidationError as exc:
                error = " ".join(exc.messages)
            else:
                with transaction.atomic():  # all the selected agencies, or none
                    for agency in agencies:
                        service(agency=agency, operator=request.user, reason=reason)
                self.message_user(
                    request,
                    f"{done} {len(agencies)} agency(ies); their owners are emailed the reason.",
                    messages.SUCCESS,
                )
                return None
        context = {
            **self.admin_site.each_context(request),
            "title": f"{verb} the selected agencies?",
            "agencies": agencies,
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "reason": request.POST.get("reason", ""),
            "error": error,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/tenants/agency/status_reason.html", context)

    @admin.action(description="Confirm the owner's email address (they can connect and publish)")
    def confirm_email(self, request: HttpRequest, queryset: QuerySet[Agency]) -> None:
        confirmed = sum(agency_confirm_email(agency=agency, operator=request.user) for agency in queryset)
        self.message_user(
            request,
            f"Confirmed the owner's address of {confirmed} agency(ies); the others were confirmed already.",
            messages.SUCCESS,
        )


@admin.register(Domain, site=operator_site)
class DomainAdmin(admin.ModelAdmin):
    list_display = ["domain", "tenant", "is_primary"]
    list_select_related = ["tenant"]
    search_fields = ["domain", "tenant__name"]
    raw_id_fields = ["tenant"]

    def save_model(self, request: HttpRequest, obj: Domain, form: Any, change: bool) -> None:
        previous = Domain.objects.select_related("tenant").filter(pk=obj.pk).first() if change else None
        super().save_model(request, obj, form, change)
        if previous is not None and previous.tenant_id != obj.tenant_id:
            # Moved to another agency: it left one site and joined another.
            _audit_domain(request, previous, "domain.removed")
            _audit_domain(request, obj, "domain.added")
        elif previous is None:
            _audit_domain(request, obj, "domain.added")
        elif form.changed_data:
            _audit_domain(request, obj, "domain.changed", form.changed_data)

    def delete_model(self, request: HttpRequest, obj: Domain) -> None:
        super().delete_model(request, obj)
        _audit_domain(request, obj, "domain.removed")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Domain]) -> None:
        domains = list(queryset.select_related("tenant"))
        super().delete_queryset(request, queryset)
        for domain in domains:
            _audit_domain(request, domain, "domain.removed")


def _audit_domain(
    request: HttpRequest, domain: Domain, action: str, changed: list[str] | None = None
) -> None:
    """An operator's change to the hosts an agency's site answers on, in that agency's own log."""
    changes: dict[str, Any] = {"domain": domain.domain, "primary": domain.is_primary}
    if changed:
        changes["fields"] = sorted(changed)
    agency_audit_operator_action(agency=domain.tenant, action=action, operator=request.user, changes=changes)


operator_site.register(User, EmailUserAdmin)
