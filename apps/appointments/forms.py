from __future__ import annotations

import datetime as dt

from django import forms

from apps.accounts.models import Program, User


class BookingForm(forms.Form):
    start = forms.DateTimeField(widget=forms.HiddenInput)
    title = forms.CharField(
        label="What is it about?",
        max_length=200,
        help_text="A short title, e.g. “CV review” or “Internship applications”.",
    )
    notes = forms.CharField(
        label="Note for your host (optional)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class AppointmentEditForm(forms.Form):
    start = forms.DateTimeField(
        label="Starts",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="In your time zone.",
    )
    duration = forms.IntegerField(label="Length in minutes", min_value=5, max_value=480)
    location = forms.CharField(label="Place", max_length=255, required=False)
    join_url = forms.URLField(
        label="Video call link", max_length=500, required=False, assume_scheme="https"
    )

    @property
    def end(self) -> dt.datetime:
        return self.cleaned_data["start"] + dt.timedelta(minutes=self.cleaned_data["duration"])


class OnBehalfForm(AppointmentEditForm):
    """Staff booking for a participant; may override the host's availability."""

    program = forms.ModelChoiceField(label="Programme", queryset=Program.objects.none())
    host = forms.ModelChoiceField(label="Host", queryset=User.objects.none())
    attendee = forms.ModelChoiceField(label="Participant", queryset=User.objects.none())
    title = forms.CharField(label="Title", max_length=200)
    notes = forms.CharField(label="Notes", required=False, widget=forms.Textarea(attrs={"rows": 3}))
    override_availability = forms.BooleanField(
        label="Book even if the host is not free at this time",
        required=False,
        help_text="The host's calendar and programme rules are then ignored; the "
        "appointment records that availability was overridden.",
    )

    field_order = [
        "program",
        "host",
        "attendee",
        "title",
        "start",
        "duration",
        "location",
        "join_url",
        "notes",
        "override_availability",
    ]


class HostSettingsForm(forms.Form):
    needs_approval = forms.BooleanField(
        label="Bookings need my approval",
        required=False,
        help_text="New bookings start as requests; you approve or decline each one.",
    )
    video_meetings = forms.BooleanField(
        label="Add a video meeting to every appointment",
        required=False,
        help_text="Your appointments calendar creates it: Google Meet for a Google "
        "calendar, Microsoft Teams for a Microsoft 365 calendar. Everyone sees the link.",
    )
