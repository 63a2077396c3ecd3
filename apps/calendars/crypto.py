"""Credentials at rest: Fernet tokens under keys from the environment.

`ENCRYPTION_KEYS` holds one or more Fernet keys, newest first. MultiFernet encrypts
with the first and decrypts with any, so a new key is rolled out by prepending it,
running `manage.py rotate_encryption_keys`, then dropping the old one: no downtime.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import cache
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


class DecryptionError(Exception):
    pass


@cache
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    if not keys:
        # Development only (production refuses to start without ENCRYPTION_KEYS): a key
        # derived from SECRET_KEY, so `make run` needs no configuration.
        digest = hashlib.sha256(f"convene-credentials:{secret_key}".encode()).digest()
        keys = (base64.urlsafe_b64encode(digest).decode(),)
    return MultiFernet([Fernet(key.encode()) for key in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt_json(value: dict[str, Any]) -> str:
    return fernet().encrypt(json.dumps(value, separators=(",", ":")).encode()).decode()


def decrypt_json(token: str) -> dict[str, Any]:
    try:
        return dict(json.loads(fernet().decrypt(token.encode())))
    except InvalidToken as error:
        raise DecryptionError(
            "Stored credentials cannot be decrypted with the configured ENCRYPTION_KEYS."
        ) from error


if TYPE_CHECKING:  # django-stubs' Field is generic; Django's runtime class is not.
    _DictField = models.Field[dict[str, Any], dict[str, Any]]
else:
    _DictField = models.Field


class EncryptedJSONField(_DictField):
    """A dict stored as one Fernet token in a text column. Never rendered in forms or
    the admin."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("default", dict)
        kwargs.setdefault("blank", True)
        kwargs["editable"] = False
        super().__init__(*args, **kwargs)

    def get_internal_type(self) -> str:
        return "TextField"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> dict[str, Any]:
        return decrypt_json(value) if value else {}

    def to_python(self, value: Any) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        return decrypt_json(value) if value else {}

    def get_prep_value(self, value: Any) -> str:
        return encrypt_json(value) if value else ""
