"""One shape for every error the API gives: {"error": {"code", "message", "fields"?}}.

`code` is what a program switches on; `message` is for the person reading the log; `fields`
maps each field of the request that was refused to why. Some errors add what a program needs to
go on (an upload's `offset`)."""

from __future__ import annotations

import json

from django.http import HttpResponse


def error_body(
    code: str, message: str, fields: dict[str, str] | None = None, extra: dict[str, object] | None = None
) -> dict[str, object]:
    error: dict[str, object] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    error.update(extra or {})
    return {"error": error}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    fields: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, object] | None = None,
) -> HttpResponse:
    response = HttpResponse(
        json.dumps(error_body(code, message, fields, extra)), status=status, content_type="application/json"
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response
