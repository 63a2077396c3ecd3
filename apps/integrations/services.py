"""Writes for integrations: API keys."""

from __future__ import annotations

import hashlib
import secrets

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Organization, User
from apps.integrations.models import ApiKey

KEY_PREFIX = "cvn_"


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def api_key_create(
    *, organization: Organization, name: str, created_by: User | None
) -> tuple[ApiKey, str]:
    """A new key. Returns it with the raw key, which is never stored: show it once."""
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        organization=organization,
        name=name,
        prefix=raw[:12],
        hashed_key=hash_key(raw),
        created_by=created_by,
    )
    return key, raw


def api_key_revoke(*, key: ApiKey) -> None:
    ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
