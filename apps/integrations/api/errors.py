from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework.response import Response
from rest_framework.views import exception_handler


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every error has one shape: {"error": {"code", "message", "fields"?}}. Field
    errors name the field and say what is wrong with it."""
    response = exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    code = getattr(exc, "default_code", "error")
    if isinstance(data, dict) and "detail" in data and len(data) == 1:
        body: dict[str, Any] = {
            "code": getattr(data["detail"], "code", code),
            "message": str(data["detail"]),
        }
    else:
        body = {
            "code": "invalid",
            "message": "The request is not valid: see fields.",
            "fields": data,
        }
    response.data = {"error": body}
    return response


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Unknown URLs under /api/ answer in the API's error shape, not with a web page."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"error": {"code": "not_found", "message": "No such endpoint or object."}},
            status=404,
        )
    return defaults.page_not_found(request, exception)
