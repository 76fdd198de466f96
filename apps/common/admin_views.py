"""The agency admin's "view on site" shortcut, kept to the agency's own models."""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.contrib.contenttypes.views import shortcut
from django.http import Http404, HttpRequest, HttpResponse


def agency_view_on_site(request: HttpRequest, content_type_id: int, object_id: str) -> HttpResponse:
    """Django's `admin/r/<content type>/<id>/`, answering 404 for models that live only in the
    public schema (agencies, domains, webhook deliveries...): the agency's search path reaches
    those tables too, so the shortcut would tell whether another agency's row exists."""
    content_type = ContentType.objects.filter(pk=content_type_id).first()
    if content_type is None:
        raise Http404("No such object.")
    try:
        app_name = apps.get_app_config(content_type.app_label).name
    except LookupError:
        raise Http404("No such object.") from None
    if app_name not in settings.TENANT_APPS:
        raise Http404("No such object.")
    return shortcut(request, content_type_id, object_id)
