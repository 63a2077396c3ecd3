"""Exchange Online for a whole organisation: Microsoft Graph with application
permissions ("app-only"), from one app registration an administrator consented to.

- Tokens come from the OAuth 2.0 client credentials grant with the `<graph>/.default`
  scope, which stands for every application permission the app was consented
  (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow),
  through msal's `ConfidentialClientApplication.acquire_token_for_client`. Such a token
  names no user: MicrosoftProvider reaches each mailbox as `/users/{address}`.
- One msal application per (authority, client id, secret), kept for the life of the
  process: msal's token cache then serves every mailbox of the organisation from one
  token until shortly before it expires.
- Consent: an administrator of the tenant opens `admin_consent_url` (the admin consent
  endpoint, https://learn.microsoft.com/entra/identity-platform/v2-admin-consent).
  Without it Entra still issues a token, with no roles in it, and Graph answers 403.
- Refusals are AADSTS codes (https://learn.microsoft.com/entra/identity-platform/reference-error-codes);
  an unknown tenant is already refused by the OpenID configuration msal fetches when the
  application is made (`{authority}/v2.0/.well-known/openid-configuration`).

Application permissions per access level (each method's "Permissions" table in the
Graph reference, "Application" row):

- "free_busy": `Calendars.Read`, the least privileged application permission listed for
  `calendarView/delta` and `GET /users/{id}/calendars`.
- "calendar": `Calendars.ReadWrite`, the only one that lets an app create, change and
  delete events; it includes reading.
- Both: `User.ReadBasic.All` (application permission since 2024), for `GET /users/{id}`
  with `id,mail,userPrincipalName`, which MicrosoftProvider.test_connection reads.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any
from urllib.parse import quote, urlencode

import msal
import requests
from django.conf import settings
from msal.exceptions import MsalServiceError

from apps.calendars.providers.base import AuthError, PermissionError, ProviderError, TransientError
from apps.calendars.providers.http import DEFAULT_TIMEOUT

GRAPH_APP_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "free_busy": ("Calendars.Read", "User.ReadBasic.All"),
    "calendar": ("Calendars.ReadWrite", "User.ReadBasic.All"),
}
# AADSTS codes that mean the app's own credentials are wrong: the organisation's admin
# must fix them, retrying cannot help.
_CREDENTIAL_REFUSALS: dict[int, str] = {
    7000215: (
        "Microsoft Entra rejected Convene's app: the client secret is wrong or expired. "
        "Create a new client secret for the app registration (Certificates & secrets) "
        "and enter its Value, not its Secret ID."
    ),
    7000222: (
        "Microsoft Entra rejected Convene's app: the client secret is wrong or expired "
        "(it has expired). Create a new client secret for the app registration and "
        "enter its Value."
    ),
    700016: (
        "Microsoft Entra does not know Convene's app in this tenant: check the "
        "Application (client) ID and the Directory (tenant) ID, and that the app "
        "registration was not deleted."
    ),
    90002: (
        "Microsoft Entra does not know this tenant: check the Directory (tenant) ID "
        "(a GUID, or the organisation's .onmicrosoft.com domain)."
    ),
}

_apps: dict[tuple[str, str, str], msal.ConfidentialClientApplication] = {}
_apps_lock = threading.Lock()


def admin_consent_url(tenant_id: str, client_id: str, redirect_uri: str) -> str:
    """Where a tenant's administrator grants the app its application permissions;
    Microsoft sends them back to `redirect_uri` (which must be registered on the app)
    with `admin_consent=True` or an error."""
    query = urlencode({"client_id": client_id, "redirect_uri": redirect_uri})
    return f"{settings.MICROSOFT_LOGIN_URL}/{quote(tenant_id, safe='')}/adminconsent?{query}"


class _TimedSession(requests.Session):
    """msal's HTTP client: a requests session with Convene's timeouts (msal's own one
    has none unless told)."""

    def request(self, method: str, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
        return super().request(method, url, *args, **kwargs)


class AppOnlyTokens:
    """A TokenSource of app-only Microsoft Graph tokens for one app registration.

    Raises AuthError when Entra refuses the app's credentials (secret wrong or expired,
    app or tenant unknown), TransientError when it cannot be reached. A missing admin
    consent surfaces later, as Graph's 403 (PermissionError from MicrosoftProvider).
    """

    def __init__(self, *, tenant_id: str, client_id: str, client_secret: str) -> None:
        self.tenant_id = tenant_id
        self.client_id = client_id
        self._secret = client_secret
        self.authority = f"{settings.MICROSOFT_LOGIN_URL}/{tenant_id}"
        self.scopes = [f"{settings.MICROSOFT_GRAPH_URL}/.default"]

    def access_token(self, *, force_refresh: bool = False) -> str:
        app = self._app()
        if force_refresh:
            # acquire_token_for_client refuses force_refresh: drop the cached token
            # instead, so the next call fetches a new one.
            app.remove_tokens_for_client()
        try:
            result = app.acquire_token_for_client(scopes=self.scopes)
        except (requests.RequestException, MsalServiceError, ValueError) as error:
            # Network errors, a 5xx (msal raises for those), an unreadable answer.
            raise TransientError(
                "Microsoft Entra could not be reached to renew Convene's access."
            ) from error
        if "access_token" in result:
            return str(result["access_token"])
        raise _refusal(result)

    def _app(self) -> msal.ConfidentialClientApplication:
        # The secret is part of the key (hashed): a new secret must not reuse the app,
        # and its token, made with the old one.
        digest = hashlib.sha256(self._secret.encode()).hexdigest()
        key = (self.authority, self.client_id, digest)
        with _apps_lock:
            app = _apps.get(key)
        if app is None:
            # Made outside the lock (it fetches the tenant's configuration): two
            # threads may both make one, and the first stored wins.
            made = self._new_app()
            with _apps_lock:
                app = _apps.setdefault(key, made)
        return app

    def _new_app(self) -> msal.ConfidentialClientApplication:
        """msal fetches the tenant's OpenID configuration here, which is where an
        unknown tenant is refused."""
        try:
            return msal.ConfidentialClientApplication(
                self.client_id,
                client_credential=self._secret,
                authority=self.authority,
                # The login URL is the operator's setting, never a user's: no instance
                # discovery, which would ask login.microsoftonline.com about it (and
                # reject any other host, e.g. a test's or an air-gapped proxy's).
                instance_discovery=False,
                http_client=_TimedSession(),
            )
        except ValueError as error:
            # msal wraps the discovery's 400 (AADSTS90002 for an unknown tenant) into a
            # ValueError of its own; the answer is in the one it replaced.
            if "AADSTS90002" in str(error.__context__) or "invalid_tenant" in str(
                error.__context__
            ):
                raise AuthError(_CREDENTIAL_REFUSALS[90002]) from error
            raise AuthError(
                "Microsoft Entra refused the tenant's sign-in address: check the "
                "Directory (tenant) ID."
            ) from error
        except requests.RequestException as error:
            raise TransientError(
                "Microsoft Entra could not be reached to renew Convene's access."
            ) from error


def _refusal(result: dict[str, Any]) -> ProviderError:
    """The error for an `acquire_token_for_client` answer without a token."""
    codes = {int(code) for code in result.get("error_codes") or [] if str(code).isdigit()}
    for code, message in _CREDENTIAL_REFUSALS.items():
        if code in codes:
            return AuthError(message)
    error = str(result.get("error") or "")
    if error in ("temporarily_unavailable", "server_error"):
        return TransientError("Microsoft Entra is not issuing tokens right now.")
    if error == "invalid_scope":
        return PermissionError(
            "Microsoft Entra refused Convene's app access to Microsoft Graph "
            f"({result.get('error_description', '')})."
        )
    return AuthError(
        "Microsoft Entra refused Convene's app"
        + (f" ({result['error_description']})" if result.get("error_description") else "")
        + ". Check the tenant ID, client ID and client secret."
    )
