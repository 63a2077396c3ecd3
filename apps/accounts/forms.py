from __future__ import annotations

from django import forms

from apps.accounts.timezones import validate_time_zone


class ProfileForm(forms.Form):
    full_name = forms.CharField(
        label="Your name",
        max_length=200,
        help_text="Shown to the people you meet.",
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    time_zone = forms.CharField(
        label="Time zone",
        max_length=64,
        validators=[validate_time_zone],
        help_text="Type to search, e.g. London or New York. Times are shown in this zone.",
        # The page renders a <datalist id="time-zones">: a searchable list without JS.
        widget=forms.TextInput(attrs={"list": "time-zones", "autocomplete": "off"}),
    )
