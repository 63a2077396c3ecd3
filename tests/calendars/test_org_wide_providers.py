"""Organisation-wide access, provider by provider, against the fakes over real HTTP:
Google Workspace through a service account with domain-wide delegation
(google-auth signs the assertion the fake verifies), Exchange Online through an app's
application permissions (msal against the fake identity platform, over TLS as msal
insists), and Exchange on-premise through EWS impersonation. Both OAuth configurations
also pass the shared provider contract."""

from __future__ import annotations

import json
import re
import socket
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest

from apps.calendars.providers import microsoft_app
from apps.calendars.providers.base import (
    AuthError,
    EventPayload,
    PermissionError,
    ServerError,
    TransientError,
)
from apps.calendars.providers.exchange import ExchangeProvider
from apps.calendars.providers.google import REQUIRED_SCOPES, GoogleProvider
from apps.calendars.providers.microsoft import MicrosoftProvider
from apps.calendars.providers.microsoft_app import (
    GRAPH_APP_PERMISSIONS,
    AppOnlyTokens,
    admin_consent_url,
)
from apps.calendars.providers.workspace import (
    WORKSPACE_SCOPES,
    ServiceAccountTokens,
    delegation_scope_list,
)
from tests.calendars.contract import ProviderContract, day_at, window_ahead
from tests.calendars.test_exchange_contract import LOOPBACK
from tests.calendars.test_exchange_contract import FakeEditor as ExchangeEditor
from tests.calendars.test_google import FakeEditor as GoogleEditor
from tests.calendars.test_microsoft import GraphEditor
from tests.fakes import ews as fake_ews
from tests.fakes import google as fake_google_module
from tests.fakes import microsoft as fake_microsoft
from tests.fakes.ews import FakeExchange, ServedExchange
from tests.fakes.google import TOKEN_AUDIENCE, FakeGoogle, FakeUser, ServedGoogle
from tests.fakes.microsoft import FakeApp, FakeMicrosoft, ServedMicrosoft

SERVICE_ACCOUNT = "convene-sync@north-careers.iam.gserviceaccount.com"
ADA = "ada@north.example.edu"
GRACE = "grace@north.example.edu"
APP_ID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
APP_SECRET = "Q~x8Q~north-careers-app-secret-0001"
SVC = "svc-convene@contoso.test"
SVC_PASSWORD = "Svc-passw0rd!"
PARTICIPANT = "ada@contoso.test"


def _payload() -> EventPayload:
    return EventPayload(
        uid=f"appointment-{uuid.uuid4().hex[:8]}@convene.invalid",
        title="Career advice",
        start=day_at(7, 9),
        end=day_at(7, 10),
        description="Booked in Convene",
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# =====================================================================================
# Google Workspace: domain-wide delegation
# =====================================================================================


@pytest.fixture
def google() -> FakeGoogle:
    return FakeGoogle()


@pytest.fixture
def google_served(google: FakeGoogle, settings: Any) -> Iterator[ServedGoogle]:
    for running in fake_google_module.serve(google):
        settings.GOOGLE_API_URL = running.base_url
        settings.GOOGLE_OAUTH_URL = running.base_url
        yield running


@pytest.fixture
def ada(google: FakeGoogle) -> FakeUser:
    return google.add_user(ADA, sub="110169484474386276334")


@pytest.fixture
def key(google_served: ServedGoogle) -> dict[str, str]:
    """The key file the admin downloaded and uploaded to Convene."""
    return google_served.google.add_service_account(SERVICE_ACCOUNT)


def _tokens(
    key: dict[str, Any], level: str = "calendar", subject: str = ADA
) -> ServiceAccountTokens:
    return ServiceAccountTokens(key, subject=subject, scopes=WORKSPACE_SCOPES[level])


def _google_provider(tokens: ServiceAccountTokens, subject: str = ADA) -> GoogleProvider:
    return GoogleProvider({"identity": subject}, tokens=tokens)


def _convene_events(user: FakeUser) -> list[str]:
    return [
        event.id
        for event in user.primary.events.values()
        if not event.cancelled
        and event.resource.get("extendedProperties", {}).get("private", {}).get("convene") == "1"
    ]


def test_workspace_levels_nest_and_paste_into_the_admin_console() -> None:
    free_busy, calendar = WORKSPACE_SCOPES["free_busy"], WORKSPACE_SCOPES["calendar"]
    assert set(free_busy) < set(calendar)  # moving down a level needs no new delegation
    assert "https://www.googleapis.com/auth/calendar.events.freebusy" in free_busy
    assert not any(scope.endswith("calendar.freebusy") for scope in calendar)
    assert set(REQUIRED_SCOPES) <= set(calendar)
    assert delegation_scope_list("free_busy") == (
        "https://www.googleapis.com/auth/calendar.calendarlist.readonly,"
        "https://www.googleapis.com/auth/calendar.events.freebusy"
    )


def test_the_token_comes_from_an_assertion_signed_for_the_person(
    google: FakeGoogle, ada: FakeUser, key: dict[str, str]
) -> None:
    google.delegate(key["client_id"], WORKSPACE_SCOPES["calendar"])
    tokens = _tokens(key)

    token = tokens.access_token()
    assert tokens.access_token() == token  # cached until it nears its expiry

    (assertion,) = google.assertions  # the fake verified its RS256 signature
    assert assertion["iss"] == SERVICE_ACCOUNT
    assert assertion["sub"] == ADA
    assert assertion["aud"] == TOKEN_AUDIENCE
    assert set(assertion["scope"].split()) == set(WORKSPACE_SCOPES["calendar"])
    assert 0 < assertion["exp"] - assertion["iat"] <= 3600
    info = google.handle("GET", f"/tokeninfo?access_token={token}", {}, b"")
    assert json.loads(info[2])["email"] == ADA


def test_force_refresh_signs_a_new_assertion(
    google: FakeGoogle, ada: FakeUser, key: dict[str, str]
) -> None:
    google.delegate(key["client_id"], WORKSPACE_SCOPES["calendar"])
    tokens = _tokens(key)
    first = tokens.access_token()
    assert tokens.access_token(force_refresh=True) != first
    assert len(google.assertions) == 2


def test_the_token_endpoint_is_the_setting_never_the_keys(
    google: FakeGoogle, ada: FakeUser, key: dict[str, str]
) -> None:
    google.delegate(key["client_id"], WORKSPACE_SCOPES["calendar"])
    elsewhere = {**key, "token_uri": "https://oauth2.attacker.invalid/token"}
    assert _tokens(elsewhere).access_token()
    assert [r.path for r in google.requests_log] == ["/token"]


def test_calendar_level_lists_syncs_and_writes_the_persons_calendar(
    google: FakeGoogle, ada: FakeUser, key: dict[str, str]
) -> None:
    google.delegate(key["client_id"], WORKSPACE_SCOPES["calendar"])
    provider = _google_provider(_tokens(key))
    busy = google.add_event(ada.primary, start=day_at(2, 9), end=day_at(2, 10))

    identity = provider.test_connection()
    calendars = provider.list_calendars()
    changes = provider.sync_busy(ada.primary.id, window_ahead(), None)
    written = provider.upsert_event(ada.primary.id, _payload())

    assert (identity.display, identity.external_id) == (ADA, ada.sub)
    assert [c.external_id for c in calendars] == [ada.primary.id]
    assert not calendars[0].read_only
    assert [(i.event_id, i.start, i.end) for i in changes.instances] == [
        (busy.id, day_at(2, 9), day_at(2, 10))
    ]
    assert _convene_events(ada) == [written.external_id]


def test_free_busy_level_reads_busy_time_but_may_not_write(
    google: FakeGoogle, ada: FakeUser, key: dict[str, str]
) -> None:
    google.delegate(key["client_id"], WORKSPACE_SCOPES["free_busy"])
    provider = _google_provider(_tokens(key, "free_busy"))
    google.add_event(ada.primary, start=day_at(3, 9), end=day_at(3, 10))

    # test_connection checks the level's scopes, not those a person is asked for.
    assert provider.required_scopes == WORKSPACE_SCOPES["free_busy"]
    assert provider.test_connection().display == ADA
    assert provider.list_calendars()[0].external_id == ada.primary.id
    changes = provider.sync_busy(ada.primary.id, window_ahead(), None)
    assert [(i.start, i.end) for i in changes.instances] == [(day_at(3, 9), day_at(3, 10))]

    with pytest.raises(PermissionError, match="every permission"):
        provider.upsert_event(ada.primary.id, _payload())
    assert _convene_events(ada) == []


def test_missing_delegation_names_the_client_id_and_the_admin_console(
    google: FakeGoogle, ada: FakeUser, key: dict[str, str]
) -> None:
    provider = _google_provider(_tokens(key))
    with pytest.raises(PermissionError) as raised:
        provider.test_connection()
    message = raised.value.message
    assert "domain-wide delegation is missing" in message
    assert key["client_id"] in message
    assert "Security > Access and data control > API controls > Domain-wide delegation" in message
    assert delegation_scope_list("calendar") in message


def test_delegation_for_fewer_scopes_than_the_level_is_refused_as_missing(
    google: FakeGoogle, ada: FakeUser, key: dict[str, str]
) -> None:
    google.delegate(key["client_id"], WORKSPACE_SCOPES["free_busy"])
    with pytest.raises(PermissionError, match="domain-wide delegation is missing"):
        _tokens(key, "calendar").access_token()


def test_a_wrong_key_is_an_auth_error(
    google: FakeGoogle, ada: FakeUser, key: dict[str, str]
) -> None:
    google.delegate(key["client_id"], WORKSPACE_SCOPES["calendar"])
    other = google.add_service_account("someone-else@other-project.iam.gserviceaccount.com")
    wrong = {**key, "private_key": other["private_key"]}
    with pytest.raises(AuthError, match="no longer accepts the service account key"):
        _tokens(wrong).access_token()
    assert google.assertions == []  # no signature held


def test_a_person_outside_the_workspace_is_an_auth_error(
    google: FakeGoogle, ada: FakeUser, key: dict[str, str]
) -> None:
    google.delegate(key["client_id"], WORKSPACE_SCOPES["calendar"])
    stranger = "nobody@north.example.edu"
    with pytest.raises(AuthError) as raised:
        _google_provider(_tokens(key, subject=stranger), stranger).test_connection()
    assert f"{stranger} is not a user" in raised.value.message


@pytest.mark.parametrize(
    "broken",
    [
        {"type": "service_account", "client_email": SERVICE_ACCOUNT},
        {"type": "service_account", "client_email": SERVICE_ACCOUNT, "private_key": "nope"},
        {"installed": {"client_id": "x.apps.googleusercontent.com"}},
    ],
)
def test_a_file_that_is_not_a_service_account_key_is_an_auth_error(
    google_served: ServedGoogle, broken: dict[str, Any]
) -> None:
    with pytest.raises(AuthError, match="not a valid service account key"):
        ServiceAccountTokens(
            broken, subject=ADA, scopes=WORKSPACE_SCOPES["calendar"]
        ).access_token()


def test_an_unreachable_token_endpoint_is_transient(key: dict[str, str], settings: Any) -> None:
    settings.GOOGLE_OAUTH_URL = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(TransientError):
        _tokens(key).access_token()


class TestGoogleWorkspaceContract(ProviderContract):
    @pytest.fixture
    def provider(
        self, google: FakeGoogle, ada: FakeUser, key: dict[str, str]
    ) -> Iterator[GoogleProvider]:
        google.delegate(key["client_id"], WORKSPACE_SCOPES["calendar"])
        provider = _google_provider(_tokens(key))
        yield provider
        provider.close()

    @pytest.fixture
    def calendar_id(self, ada: FakeUser) -> str:
        return ada.primary.id

    @pytest.fixture
    def remote(self, google: FakeGoogle, ada: FakeUser) -> GoogleEditor:
        return GoogleEditor(google, ada.primary)


# =====================================================================================
# Exchange Online: application permissions (app-only)
# =====================================================================================


@pytest.fixture
def graph() -> FakeMicrosoft:
    fake = FakeMicrosoft()
    fake.add_mailbox(ADA, display_name="Ada Lovelace")
    fake.add_mailbox(GRACE, display_name="Grace Hopper")
    return fake


@pytest.fixture
def graph_served(
    graph: FakeMicrosoft, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ServedMicrosoft]:
    for served in fake_microsoft.serve(graph, tls=True):
        settings.MICROSOFT_GRAPH_URL = settings.MICROSOFT_LOGIN_URL = served.base_url
        # Trust the fake's certificate the way an operator trusts a private CA.
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", served.ca_file)
        # msal applications live as long as the process: each test starts without.
        monkeypatch.setattr(microsoft_app, "_apps", {})
        yield served


@pytest.fixture
def app(graph: FakeMicrosoft, graph_served: ServedMicrosoft) -> FakeApp:
    return graph.add_app(
        graph.tenant_id, APP_ID, APP_SECRET, set(GRAPH_APP_PERMISSIONS["calendar"])
    )


def _app_tokens(graph: FakeMicrosoft, **overrides: str) -> AppOnlyTokens:
    options = {"tenant_id": graph.tenant_id, "client_id": APP_ID, "client_secret": APP_SECRET}
    return AppOnlyTokens(**{**options, **overrides})


def _mailbox_provider(
    tokens: AppOnlyTokens, mail: str = ADA, access: str = "calendar"
) -> MicrosoftProvider:
    credentials = {"mailbox": mail, "identity": mail, "access": access}
    return MicrosoftProvider(credentials, tokens=tokens)


def _graph_paths(graph: FakeMicrosoft) -> list[str]:
    return [r.path for r in graph.requests_log if r.path.startswith("/v1.0/")]


def test_graph_permissions_and_the_admin_consent_address(settings: Any) -> None:
    settings.MICROSOFT_LOGIN_URL = "https://login.microsoftonline.com"
    assert GRAPH_APP_PERMISSIONS == {
        "free_busy": ("Calendars.Read", "User.ReadBasic.All"),
        "calendar": ("Calendars.ReadWrite", "User.ReadBasic.All"),
    }
    url = admin_consent_url("contoso.onmicrosoft.com", APP_ID, "https://convene.test/admin/x/")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/adminconsent"
    )
    assert parse_qs(parts.query) == {
        "client_id": [APP_ID],
        "redirect_uri": ["https://convene.test/admin/x/"],
    }


def test_app_only_token_syncs_and_writes_a_named_mailbox(
    graph: FakeMicrosoft, graph_served: ServedMicrosoft, app: FakeApp
) -> None:
    graph.grant_admin_consent(APP_ID)
    provider = _mailbox_provider(_app_tokens(graph))
    calendar_id = graph.mailbox(ADA).default_calendar_id
    graph.add_event(calendar_id, start=day_at(2, 9), end=day_at(2, 10))

    assert provider.test_connection().display == ADA
    assert [c.external_id for c in provider.list_calendars()] == [calendar_id]
    changes = provider.sync_busy(calendar_id, window_ahead(), None)
    provider.upsert_event(calendar_id, _payload())

    assert [(i.start, i.end) for i in changes.instances] == [(day_at(2, 9), day_at(2, 10))]
    assert len(graph.events_in(calendar_id)) == 2
    # Every request names the mailbox (delta links name it by id), none is /me.
    mailbox = graph.mailbox(ADA)
    paths = _graph_paths(graph)
    assert paths
    assert all(p.startswith((f"/v1.0/users/{ADA}", f"/v1.0/users/{mailbox.id}")) for p in paths)
    (token_request,) = graph.token_requests()
    form = dict(parse_qsl(token_request.body.decode()))
    assert form["scope"] == f"{graph_served.base_url}/.default"
    assert token_request.path == f"/{graph.tenant_id}/oauth2/v2.0/token"


def test_one_token_serves_every_mailbox_of_the_organisation(
    graph: FakeMicrosoft, graph_served: ServedMicrosoft, app: FakeApp
) -> None:
    graph.grant_admin_consent(APP_ID)
    for mail in (ADA, GRACE):
        # As provider_for builds them: a token source per account, same app.
        provider = _mailbox_provider(_app_tokens(graph), mail)
        calendar_id = graph.mailbox(mail).default_calendar_id
        provider.sync_busy(calendar_id, window_ahead(), None)
    assert len(graph.token_requests()) == 1
    discovery = [r for r in graph.requests_log if r.path.endswith("openid-configuration")]
    assert len(discovery) == 1


def test_force_refresh_fetches_a_new_token(
    graph: FakeMicrosoft, graph_served: ServedMicrosoft, app: FakeApp
) -> None:
    graph.grant_admin_consent(APP_ID)
    tokens = _app_tokens(graph)
    first = tokens.access_token()
    assert tokens.access_token() == first
    assert tokens.access_token(force_refresh=True) != first
    assert len(graph.token_requests()) == 2


def test_a_token_graph_refuses_is_replaced_once(
    graph: FakeMicrosoft, graph_served: ServedMicrosoft, app: FakeApp
) -> None:
    graph.grant_admin_consent(APP_ID)
    provider = _mailbox_provider(_app_tokens(graph))
    provider.list_calendars()
    graph.expire_access_tokens()  # Graph answers 401; msal's cache still holds it
    assert provider.list_calendars()
    assert len(graph.token_requests()) == 2


def test_without_admin_consent_graph_refuses_and_the_message_says_so(
    graph: FakeMicrosoft, graph_served: ServedMicrosoft, app: FakeApp
) -> None:
    provider = _mailbox_provider(_app_tokens(graph), access="free_busy")
    with pytest.raises(PermissionError) as raised:
        provider.test_connection()
    assert "admin consent" in raised.value.message
    assert "Calendars.Read, User.ReadBasic.All" in raised.value.message
    assert ADA in raised.value.message
    # Consent to the profile permission only: the calendars are still refused.
    graph.grant_admin_consent(APP_ID, {"User.ReadBasic.All"})
    fresh = _mailbox_provider(_app_tokens(graph))
    fresh.tokens.access_token(force_refresh=True)
    with pytest.raises(PermissionError, match="admin consent"):
        fresh.list_calendars()


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"client_secret": "Q~wrong"}, "client secret is wrong or expired"),
        ({"client_id": "00000000-0000-4000-8000-0000000000aa"}, "does not know Convene's app"),
        ({"tenant_id": "deadbeef-0000-4000-8000-000000000000"}, "does not know this tenant"),
    ],
)
def test_wrong_app_credentials_are_auth_errors(
    graph: FakeMicrosoft,
    graph_served: ServedMicrosoft,
    app: FakeApp,
    change: dict[str, str],
    says: str,
) -> None:
    graph.grant_admin_consent(APP_ID)
    with pytest.raises(AuthError, match=says):
        _mailbox_provider(_app_tokens(graph, **change)).test_connection()


def test_an_expired_secret_is_an_auth_error(
    graph: FakeMicrosoft, graph_served: ServedMicrosoft, app: FakeApp
) -> None:
    graph.expire_secret(APP_ID)
    with pytest.raises(AuthError, match="wrong or expired"):
        _app_tokens(graph).access_token()


def test_app_only_tokens_reach_users_of_the_tenant_never_me(
    graph: FakeMicrosoft, graph_served: ServedMicrosoft, app: FakeApp
) -> None:
    graph.grant_admin_consent(APP_ID)
    tokens = _app_tokens(graph)
    stranger = graph.add_mailbox("zoe@outlook.test", personal=True)
    with pytest.raises(ServerError, match="400"):
        MicrosoftProvider({"identity": ADA}, tokens=tokens).list_calendars()  # /me
    with pytest.raises(ServerError, match="404"):
        _mailbox_provider(tokens, stranger.mail).list_calendars()


def test_an_unreachable_identity_platform_is_transient(settings: Any) -> None:
    settings.MICROSOFT_LOGIN_URL = f"https://127.0.0.1:{_closed_port()}"
    tokens = AppOnlyTokens(tenant_id="contoso.test", client_id=APP_ID, client_secret="x")
    with pytest.raises(TransientError):
        tokens.access_token()


class TestGraphAppOnlyContract(ProviderContract):
    @pytest.fixture
    def provider(
        self, graph: FakeMicrosoft, graph_served: ServedMicrosoft, app: FakeApp
    ) -> Iterator[MicrosoftProvider]:
        graph.grant_admin_consent(APP_ID)
        provider = _mailbox_provider(_app_tokens(graph))
        yield provider
        provider.close()

    @pytest.fixture
    def calendar_id(self, graph: FakeMicrosoft) -> str:
        return graph.mailbox(ADA).default_calendar_id

    @pytest.fixture
    def remote(self, graph: FakeMicrosoft, calendar_id: str) -> GraphEditor:
        return GraphEditor(graph, calendar_id)


# =====================================================================================
# Exchange on-premise: EWS impersonation
# =====================================================================================


@pytest.fixture
def exchange() -> FakeExchange:
    """The server, whose own account is Convene's service account."""
    return FakeExchange(SVC, SVC_PASSWORD)


@pytest.fixture
def participant(exchange: FakeExchange) -> FakeExchange:
    return exchange.add_mailbox(PARTICIPANT)


@pytest.fixture
def ews_served(exchange: FakeExchange) -> Iterator[ServedExchange]:
    yield from fake_ews.serve(exchange)


def _impersonating(
    served: ServedExchange, email: str = PARTICIPANT, **overrides: Any
) -> ExchangeProvider:
    credentials = {
        "email": email,
        "username": SVC,
        "password": SVC_PASSWORD,
        "server_url": served.ews_url,
        "impersonate": True,
        **overrides,
    }
    return ExchangeProvider(credentials, policy=LOOPBACK)


def test_impersonation_reads_and_writes_the_participants_mailbox(
    exchange: FakeExchange, participant: FakeExchange, ews_served: ServedExchange
) -> None:
    exchange.grant_impersonation(SVC)
    busy = participant.add_item(subject="Exam", start=day_at(2, 9), end=day_at(2, 10))
    provider = _impersonating(ews_served)
    try:
        identity = provider.test_connection()
        calendars = provider.list_calendars()
        changes = provider.sync_busy(participant.calendar.id, window_ahead(), None)
        written = provider.upsert_event(participant.calendar.id, _payload())
    finally:
        provider.close()

    assert identity.display == PARTICIPANT
    assert next(c for c in calendars if c.primary).external_id == participant.calendar.id
    assert [(i.event_id, i.start, i.end) for i in changes.instances] == [
        (busy.id, day_at(2, 9), day_at(2, 10))
    ]
    assert written.external_id in participant.items
    assert exchange.items == {}  # the service account's own mailbox is untouched
    # Every mailbox operation acts as the participant (ConvertId is exchangelib tasting
    # the server's auth types, before it touches any mailbox).
    operations = [r for r in exchange.requests if r.operation not in ("", "ConvertId")]
    assert operations and {r.impersonating for r in operations} == {PARTICIPANT}
    assert {a.username for a in exchange.attempts} == {SVC}


def test_impersonation_without_the_role_is_refused_with_the_role_to_assign(
    exchange: FakeExchange, participant: FakeExchange, ews_served: ServedExchange
) -> None:
    with pytest.raises(PermissionError) as raised:
        _impersonating(ews_served).test_connection()
    assert "ApplicationImpersonation" in raised.value.message
    assert "New-ManagementRoleAssignment" in raised.value.message
    assert [r.operation for r in exchange.requests if r.operation not in ("", "ConvertId")] == [
        "GetFolder"
    ]
    assert participant.items == {}


def test_impersonating_an_address_without_a_mailbox_says_so(
    exchange: FakeExchange, participant: FakeExchange, ews_served: ServedExchange
) -> None:
    exchange.grant_impersonation(SVC)
    with pytest.raises(PermissionError, match=re.escape("no mailbox for nobody@contoso.test")):
        _impersonating(ews_served, "nobody@contoso.test").test_connection()


def test_a_wrong_service_account_password_names_the_service_account(
    exchange: FakeExchange, participant: FakeExchange, ews_served: ServedExchange
) -> None:
    exchange.grant_impersonation(SVC)
    with pytest.raises(AuthError, match="service account's username or password"):
        _impersonating(ews_served, password="wrong").test_connection()
    assert len(exchange.attempts) == 1  # tried once: no lock-out


def test_impersonation_never_runs_autodiscover(
    exchange: FakeExchange, participant: FakeExchange, ews_served: ServedExchange
) -> None:
    exchange.grant_impersonation(SVC)
    with pytest.raises(ServerError, match="EWS URL"):
        _impersonating(ews_served, server_url="").test_connection()
    assert exchange.requests == []


class TestExchangeImpersonationContract(ProviderContract):
    @pytest.fixture
    def provider(
        self, exchange: FakeExchange, participant: FakeExchange, ews_served: ServedExchange
    ) -> Iterator[ExchangeProvider]:
        exchange.grant_impersonation(SVC)
        provider = _impersonating(ews_served)
        yield provider
        provider.close()

    @pytest.fixture
    def calendar_id(self, participant: FakeExchange) -> str:
        return participant.calendar.id

    @pytest.fixture
    def remote(self, participant: FakeExchange) -> ExchangeEditor:
        return ExchangeEditor(participant)
