"""Google Workspace for a whole organisation: a service account with domain-wide
delegation reads (and, at the "calendar" level, writes) every person's calendar.

How it works (developers.google.com/identity/protocols/oauth2/service-account, "Delegating
domain-wide authority"): the service account signs a JWT with its private key that names
the person (`sub`) and the scopes, and trades it at Google's token endpoint for an access
token that acts as that person (RFC 7523, grant type jwt-bearer). A Workspace admin
allows this once, in the Admin console (Security > Access and data control > API
controls > Domain-wide delegation), for the service account's client id and exactly
these scopes; a token request with a scope outside that list is refused as a whole
(`unauthorized_client`).

Scopes per access level, as the Calendar API reference lists them for each method
(see providers/google.py):

- "free_busy": `calendar.calendarlist.readonly` for the calendar list, and
  `calendar.events.freebusy` ("See the availability on Google calendars you have access
  to"), the narrowest scope `events.list` takes. `calendar.freebusy` is the scope of the
  separate `freebusy.query` method, which `events.list` does not accept.
- "calendar": the same, plus `calendar.events.readonly` and `calendar.events.owned`,
  which is what GoogleProvider asks a person for. Each level holds the one below it, so
  an organisation that delegated "calendar" can move down to "free_busy" without
  touching the Admin console.

The token endpoint is always `settings.GOOGLE_OAUTH_URL + "/token"`, never the key's
`token_uri`: a key downloaded from Google names Google's endpoint anyway, the setting is
the one place that redirects it (tests, air-gapped installs), and a key pasted by an
admin cannot send the signed assertion anywhere else. The assertion's `aud` is Google's
token URL whatever the endpoint: google-auth sets it so, as Google requires.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings
from google.auth import exceptions as google_errors
from google.auth.transport.requests import Request
from google.oauth2 import service_account

from apps.calendars.providers.base import (
    AuthError,
    PermissionError,
    ProviderError,
    TransientError,
)
from apps.calendars.providers.http import DEFAULT_TIMEOUT

_SCOPE = "https://www.googleapis.com/auth/"
_FREE_BUSY = (f"{_SCOPE}calendar.calendarlist.readonly", f"{_SCOPE}calendar.events.freebusy")
WORKSPACE_SCOPES: dict[str, tuple[str, ...]] = {
    "free_busy": _FREE_BUSY,
    "calendar": (
        *_FREE_BUSY,
        f"{_SCOPE}calendar.events.readonly",
        f"{_SCOPE}calendar.events.owned",
    ),
}
ADMIN_CONSOLE_PATH = "Security > Access and data control > API controls > Domain-wide delegation"


def delegation_scope_list(level: str) -> str:
    """The scopes of an access level, comma-separated as the Admin console's "OAuth
    scopes" field takes them. Raises KeyError for an unknown level."""
    return ",".join(WORKSPACE_SCOPES[level])


class _TimedRequest(Request):
    """google-auth's requests transport with Convene's timeouts: the token request
    passes none, so google-auth would wait up to 120 seconds."""

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: Any = None,
        timeout: Any = DEFAULT_TIMEOUT,
        **kwargs: Any,
    ) -> Any:
        return super().__call__(
            url, method=method, body=body, headers=headers, timeout=timeout, **kwargs
        )


class ServiceAccountTokens:
    """A TokenSource whose tokens act as `subject`, from a service account with
    domain-wide delegation for `scopes`.

    `info` is the service account's key as Google hands it out (JSON with `type`,
    `client_email`, `client_id`, `private_key`, ...). Raises AuthError for a key that is
    not one, or that Google no longer accepts, or a subject that is not a user of the
    Workspace; PermissionError when the admin has not delegated the scopes;
    TransientError when Google cannot be reached.
    """

    def __init__(self, info: Mapping[str, Any], *, subject: str, scopes: Sequence[str]) -> None:
        self.subject = subject
        # Public: GoogleProvider.test_connection checks the token against these.
        self.scopes = tuple(scopes)
        self.client_id = str(info.get("client_id") or "")
        self._info = info
        self._credentials: service_account.Credentials | None = None
        self._request = _TimedRequest()
        # One refresh at a time: two threads of a worker may share a token source.
        self._lock = threading.Lock()

    def access_token(self, *, force_refresh: bool = False) -> str:
        with self._lock:
            credentials = self._credentials or self._load()
            # `valid` is False a few minutes before expiry too (google-auth's refresh
            # threshold), so a token never runs out in the middle of a sync.
            if force_refresh or not credentials.valid:
                self._refresh(credentials)
            return str(credentials.token)

    def _load(self) -> service_account.Credentials:
        try:
            credentials = service_account.Credentials.from_service_account_info(
                dict(self._info), scopes=self.scopes, subject=self.subject
            )
        except (ValueError, TypeError, KeyError) as error:
            # MalformedError (missing fields, an unreadable private key) is a ValueError.
            raise AuthError(
                "The Google service account key is not a valid service account key. In "
                "the Google Cloud console, create a JSON key for the service account "
                "(IAM & Admin > Service accounts > Keys) and upload the whole file."
            ) from error
        self._credentials = credentials.with_token_uri(f"{settings.GOOGLE_OAUTH_URL}/token")
        return self._credentials

    def _refresh(self, credentials: service_account.Credentials) -> None:
        # refresh() only: before_request() would also start google-auth's background
        # Regional Access Boundary lookup at iamcredentials.googleapis.com.
        try:
            credentials.refresh(self._request)
        except google_errors.RefreshError as error:
            raise self._refusal(error) from error
        except google_errors.TransportError as error:
            raise TransientError(
                "Google could not be reached to renew the service account's access."
            ) from error

    def _refusal(self, error: google_errors.RefreshError) -> ProviderError:
        """What Google's token endpoint refusal means, for the admin who can fix it
        (RFC 6749, section 5.2 codes; the descriptions are Google's)."""
        answer = error.args[1] if len(error.args) > 1 else None
        body: Mapping[str, Any] = answer if isinstance(answer, Mapping) else {}
        code = str(body.get("error") or "")
        description = str(body.get("error_description") or "")
        if getattr(error, "retryable", False):
            return TransientError("Google is not renewing the service account's access right now.")
        if code == "unauthorized_client":
            return PermissionError(
                "Google Workspace has not allowed Convene's service account to act for "
                f"its users: domain-wide delegation is missing. A Workspace admin must "
                f"open the Google Admin console ({ADMIN_CONSOLE_PATH}) and add client ID "
                f"{self.client_id or '(the client_id in the key file)'} with these OAuth "
                f"scopes: {','.join(self.scopes)}."
            )
        if code == "invalid_grant" and "email or user id" in description.lower():
            return AuthError(
                f"{self.subject} is not a user of the organisation's Google Workspace "
                "(or the account is suspended). Check the address: it must be the "
                "person's primary Workspace email address."
            )
        if code == "invalid_grant" and (
            "signature" in description.lower() or "account not found" in description.lower()
        ):
            return AuthError(
                "Google no longer accepts the service account key: it is wrong, or it "
                "(or the service account) was deleted or disabled. Create a new JSON key "
                "for the service account and upload it."
            )
        if code == "invalid_client":
            return AuthError(
                "Google does not accept the service account key: it is not a valid "
                "service account key, or the service account was disabled. Upload a "
                "current JSON key of an enabled service account."
            )
        return AuthError(
            "Google refused the service account's access"
            + (f" ({description})" if description else "")
            + ". Check the key and the domain-wide delegation in the Google Admin console."
        )
