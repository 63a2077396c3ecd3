"""Who is calling the API, and which organizations they may see.

Integrators send `Authorization: Bearer <key>`; Convene's own pages use the session.
Either way the request is confined to a set of organizations, and every query the API
makes is filtered by it: a key never sees another organization's data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.request import Request

from apps.accounts.models import Membership, Organization, User
from apps.integrations.models import ApiKey
from apps.integrations.services import hash_key

# last_used_at is a hint for admins, not an audit log: write it at most once a minute.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode(errors="replace")
        if not header.startswith(f"{self.keyword} "):
            return None
        raw = header[len(self.keyword) + 1 :].strip()
        key = (
            ApiKey.objects.select_related("organization")
            .filter(hashed_key=hash_key(raw), revoked_at__isnull=True)
            .first()
        )
        if key is None:
            raise exceptions.AuthenticationFailed(
                "This API key is not valid or was revoked. Ask your Convene administrator "
                "for a new one."
            )
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return (None, key)

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes the key: a bearer token."""

    target_class = "apps.integrations.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "An organization's API key."}


@dataclass(frozen=True)
class Caller:
    """The caller: an organization's API key (user None), or a signed-in person."""

    organization_ids: frozenset[int]
    user: User | None
    key: ApiKey | None


def caller(request: Request | HttpRequest) -> Caller:
    key = getattr(request, "auth", None)
    if isinstance(key, ApiKey):
        return Caller(frozenset({key.organization_id}), None, key)
    user = request.user
    if not isinstance(user, User) or not user.is_authenticated:
        raise exceptions.NotAuthenticated()
    if user.is_superuser:
        ids = frozenset(Organization.objects.values_list("pk", flat=True))
    else:
        ids = frozenset(
            Membership.objects.filter(user=user).values_list("program__organization_id", flat=True)
        ) | ({user.managed_organization_id} if user.managed_organization_id else set())
    return Caller(ids, user, None)


def people_of(organization_ids: frozenset[int]) -> Q:
    """The people a caller may name: members of its organizations' programmes."""
    return Q(memberships__program__organization_id__in=organization_ids)


class IsApiCaller(permissions.BasePermission):
    message = "Send an API key as `Authorization: Bearer <key>`, or sign in."

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, ApiKey) or bool(
            request.user and request.user.is_authenticated
        )


class ApiKeyRateThrottle(throttling.SimpleRateThrottle):
    """Requests per minute per key (each key has its own limit); 429 with Retry-After."""

    scope = "api_key"

    def allow_request(self, request: Request, view: Any) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            self.rate = "600/min"
        else:
            self.rate = f"{key.rate_limit_per_minute}/min"
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_rate(self) -> str:
        return "600/min"

    def get_cache_key(self, request: Request, view: Any) -> str:
        key, user = request.auth, request.user
        if isinstance(key, ApiKey):
            ident = f"key-{key.pk}"
        elif user is not None and user.is_authenticated:
            ident = f"user-{user.pk}"
        else:
            ident = f"ip-{self.get_ident(request)}"
        return f"api-throttle:{ident}"
