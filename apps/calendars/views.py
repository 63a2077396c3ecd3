"""The participant's calendar settings. Every view acts on the signed-in person's own
accounts only: another person's account id answers 404."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.forms import Form
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from apps.accounts.models import CalendarService, calendar_noun
from apps.accounts.types import AuthenticatedHttpRequest
from apps.calendars.forms import (
    CalDAVConnectForm,
    CalendarChoicesForm,
    DisconnectForm,
    ExchangeConnectForm,
    ICloudConnectForm,
    ReconnectForm,
)
from apps.calendars.models import CalendarAccount
from apps.calendars.oauth_connect import (
    OAUTH_SERVICES,
    RETRY_SESSION_KEY,
    calendar_scopes,
    connect_url,
    is_configured,
)
from apps.calendars.providers.base import ProviderError
from apps.calendars.selectors import calendar_account_of, calendar_accounts_of, connect_allowance
from apps.calendars.services import (
    calendar_account_connect,
    calendar_account_disconnect,
    calendar_account_reconnect,
    calendar_choices_update,
    calendar_list_refresh,
)

# Services connected with a password form here; Google and Microsoft use OAuth.
PASSWORD_FORMS: dict[str, type[Form]] = {
    CalendarService.ICLOUD: ICloudConnectForm,
    CalendarService.CALDAV: CalDAVConnectForm,
    CalendarService.EXCHANGE: ExchangeConnectForm,
}


def _safe_next(request: AuthenticatedHttpRequest) -> str:
    """A same-site path to return to, never an open redirect."""
    target = request.POST.get("next", "")
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if allowed else ""


def _own_account(request: AuthenticatedHttpRequest, pk: int) -> CalendarAccount:
    try:
        return calendar_account_of(user=request.user, pk=pk)
    except CalendarAccount.DoesNotExist as error:
        raise Http404("No such calendar account.") from error


def _settings_context(request: AuthenticatedHttpRequest) -> dict[str, object]:
    accounts = list(calendar_accounts_of(user=request.user))
    allowance = connect_allowance(user=request.user)
    retry = request.session.pop(RETRY_SESSION_KEY, None)
    return {
        "accounts": [
            (
                account,
                CalendarChoicesForm(
                    calendars=list(account.calendars.all()), prefix=f"account-{account.pk}"
                ),
            )
            for account in accounts
        ],
        "allowance": allowance,
        "connectable": [
            (service, CalendarService(service).label)
            for service in allowance.services
            if service in PASSWORD_FORMS or (service in OAUTH_SERVICES and is_configured(service))
        ],
        "retry": {**retry, "noun": calendar_noun(retry["provider"])} if retry else None,
    }


@login_required
def calendar_settings(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(request, "calendars/settings.html", _settings_context(request))


@login_required
def welcome_calendar(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The last, skippable step of the profile-completion flow."""
    return render(request, "calendars/welcome.html", {**_settings_context(request), "step": 2})


def _oauth_connect_page(
    request: AuthenticatedHttpRequest, provider: str, *, account: CalendarAccount | None = None
) -> HttpResponse:
    """The page before the consent screen: what Convene will ask for, and why."""
    return render(
        request,
        "calendars/connect_oauth.html",
        {
            "provider": provider,
            "label": CalendarService(provider).label,
            "noun": calendar_noun(provider),
            "account": account,
            "scopes": calendar_scopes(provider).values(),
            "action": connect_url(
                provider, next_url=request.GET.get("next") or reverse("calendar_settings")
            ),
            "configured": is_configured(provider),
        },
    )


@login_required
def calendar_connect(request: AuthenticatedHttpRequest, provider: str) -> HttpResponse:
    if provider in OAUTH_SERVICES:
        return _oauth_connect_page(request, provider)
    form_class = PASSWORD_FORMS.get(provider)
    if form_class is None:
        raise Http404("Unknown calendar service.")
    label = CalendarService(provider).label
    form = form_class(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        server_url = data.pop("server_url", "")
        try:
            calendar_account_connect(
                owner=request.user, provider=provider, credentials=data, server_url=server_url
            )
        except ValidationError as error:
            form.add_error(None, error)
        except ProviderError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, f"Your {label} calendar is connected.")
            return redirect(_safe_next(request) or "calendar_settings")
    return render(
        request,
        "calendars/connect.html",
        {"form": form, "provider": provider, "label": label, "next": request.GET.get("next", "")},
    )


@login_required
def calendar_account_reconnect_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    account = _own_account(request, pk)
    if account.provider in OAUTH_SERVICES:
        return _oauth_connect_page(request, account.provider, account=account)
    form = ReconnectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        credentials = {**account.credentials, "password": form.cleaned_data["password"]}
        try:
            calendar_account_reconnect(account=account, actor=request.user, credentials=credentials)
        except ProviderError as error:
            form.add_error(None, error.message)
        else:
            messages.success(
                request, f"Your {account.get_provider_display()} calendar is connected again."
            )
            return redirect("calendar_settings")
    return render(request, "calendars/reconnect.html", {"form": form, "account": account})


@login_required
@require_POST
def calendar_account_choices(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    account = _own_account(request, pk)
    calendars = list(account.calendars.all())
    form = CalendarChoicesForm(request.POST, calendars=calendars, prefix=f"account-{account.pk}")
    if form.is_valid():
        target = form.cleaned_data["write_calendar"]
        try:
            calendar_choices_update(
                account=account,
                actor=request.user,
                conflict_calendar_ids=[int(pk) for pk in form.cleaned_data["conflicts"]],
                write_calendar_id=int(target) if target else None,
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, "Your calendar choices are saved.")
    else:
        messages.error(request, "Those choices could not be saved: pick from the lists shown.")
    return redirect("calendar_settings")


@login_required
@require_POST
def calendar_account_refresh(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    account = _own_account(request, pk)
    try:
        calendars = calendar_list_refresh(account=account, actor=request.user)
    except ProviderError as error:
        messages.error(request, f"The list could not be refreshed: {error.message}")
    else:
        count = len(calendars)
        messages.success(request, f"Calendar list refreshed: {count} calendar{pluralize(count)}.")
    return redirect("calendar_settings")


@login_required
def calendar_account_disconnect_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    account = _own_account(request, pk)
    if account.source == CalendarAccount.Source.ORGANIZATION:
        raise Http404("Calendars connected through your organization cannot be disconnected here.")
    form = DisconnectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        label = account.get_provider_display()
        problems = calendar_account_disconnect(
            account=account, actor=request.user, remove_events=form.cleaned_data["remove_events"]
        )
        if problems:
            messages.warning(
                request,
                f"Your {label} calendar is disconnected, but some of Convene's events could "
                f"not be removed ({problems[0]}); delete them in your calendar app.",
            )
        else:
            messages.success(request, f"Your {label} calendar is disconnected.")
        return redirect("calendar_settings")
    return render(request, "calendars/disconnect.html", {"form": form, "account": account})
