from __future__ import annotations

from typing import Any, cast

from django import forms

from apps.calendars.models import Calendar


class ICloudConnectForm(forms.Form):
    username = forms.EmailField(
        label="Apple ID",
        help_text="The email address you sign in to iCloud with.",
        widget=forms.EmailInput(attrs={"autocomplete": "username"}),
    )
    password = forms.CharField(
        label="App-specific password",
        strip=True,
        help_text=(
            "Not your Apple ID password: create an app-specific password at "
            '<a href="https://appleid.apple.com/account/manage" target="_blank" '
            'rel="noopener">appleid.apple.com</a> (Sign-In and Security → App-Specific '
            "Passwords). It looks like abcd-efgh-ijkl-mnop."
        ),
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
    )


class CalDAVConnectForm(forms.Form):
    server_url = forms.URLField(
        label="Server address",
        max_length=500,
        assume_scheme="https",
        help_text=(
            "The CalDAV address your provider gives, e.g. https://cloud.example.org/"
            "remote.php/dav for Nextcloud or https://caldav.fastmail.com/ for Fastmail."
        ),
    )
    username = forms.CharField(
        label="Username", max_length=254, widget=forms.TextInput(attrs={"autocomplete": "username"})
    )
    password = forms.CharField(
        label="Password",
        help_text="If your provider offers app passwords, use one.",
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
    )


class ExchangeConnectForm(forms.Form):
    email = forms.EmailField(
        label="Email address",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    password = forms.CharField(
        label="Password",
        help_text="The password you sign in to Outlook or Outlook on the web with.",
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
    )
    server_url = forms.URLField(
        label="Exchange server URL",
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text=(
            "Optional. Leave empty to look it up from your email address. Otherwise the "
            "address of Outlook on the web (e.g. https://mail.example.org) or the full EWS "
            "address ending in /EWS/Exchange.asmx."
        ),
    )
    username = forms.CharField(
        label="Username",
        required=False,
        max_length=254,
        help_text=(
            "Optional. Only if you sign in with something other than your email address: "
            "DOMAIN\\user or user@domain."
        ),
        widget=forms.TextInput(attrs={"autocomplete": "username"}),
    )

    def clean_username(self) -> str:
        username = str(self.cleaned_data.get("username") or "").strip()
        if username and "\\" not in username and "@" not in username:
            raise forms.ValidationError("Write the username as DOMAIN\\user or user@domain.")
        return username


class ReconnectForm(forms.Form):
    password = forms.CharField(
        label="New password",
        help_text="For iCloud, a new app-specific password from appleid.apple.com.",
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
    )


class CalendarChoicesForm(forms.Form):
    """Which of an account's calendars block bookings, and the one that receives them."""

    conflicts = forms.MultipleChoiceField(
        label="Check these calendars for conflicts",
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    write_calendar = forms.ChoiceField(
        label="Add appointments to",
        required=False,
        widget=forms.RadioSelect,
    )

    def __init__(self, *args: Any, calendars: list[Calendar], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["conflicts"]).choices = [
            (str(c.pk), c.name) for c in calendars
        ]
        cast(forms.ChoiceField, self.fields["write_calendar"]).choices = [("", "None of these")] + [
            (str(c.pk), c.name) for c in calendars if not c.is_read_only
        ]
        self.initial.setdefault("conflicts", [str(c.pk) for c in calendars if c.check_conflicts])
        target = next((c for c in calendars if c.is_write_target), None)
        self.initial.setdefault("write_calendar", str(target.pk) if target else "")


class DisconnectForm(forms.Form):
    remove_events = forms.TypedChoiceField(
        label="What about the events Convene added to this calendar?",
        choices=[
            ("no", "Keep them in my calendar"),
            ("yes", "Remove them from my calendar"),
        ],
        coerce=lambda value: value == "yes",
        widget=forms.RadioSelect,
        initial="no",
    )
