from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.formats import date_format

from apps.accounts.models import Program
from apps.mentoring.models import MentoringGroup, PollOption, Vote

DURATIONS = [
    (30, "30 minutes"),
    (45, "45 minutes"),
    (60, "1 hour"),
    (90, "1½ hours"),
    (120, "2 hours"),
]


def option_label(option: PollOption) -> str:
    """An option's time in the active (the viewer's) zone, e.g. “Tue 3 Jun, 14:00-15:00”."""
    start, end = timezone.localtime(option.start), timezone.localtime(option.end)
    return f"{date_format(start, 'D j M')}, {start:%H:%M}\u2013{end:%H:%M}"


class PollCreateForm(forms.Form):
    group = forms.ModelChoiceField(label="Group", queryset=MentoringGroup.objects.none())
    title = forms.CharField(
        label="Title", max_length=200, help_text="What the meeting is about, e.g. “March check-in”."
    )
    duration_minutes = forms.TypedChoiceField(
        label="Length", choices=DURATIONS, coerce=int, initial=60
    )
    date_from = forms.DateField(
        label="First day", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    date_to = forms.DateField(
        label="Last day",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="Up to 31 days. Convene proposes up to 12 times, spread over these days.",
    )
    day_start = forms.TimeField(
        label="Not before (optional)",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text="A time of day in your time zone; leave empty for the programme's hours.",
    )
    day_end = forms.TimeField(
        label="Not after (optional)",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    required = forms.IntegerField(
        label="How many invitees must be free (optional)",
        required=False,
        min_value=1,
        help_text="Leave empty to propose only times when everyone with a connected "
        "calendar is free; enter a number to also accept times when at least that many are.",
    )
    deadline = forms.DateTimeField(
        label="Answer by (optional)",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="The poll closes by itself then; those who have not answered are "
        "reminded a day before.",
    )
    location = forms.CharField(
        label="Place or video link (optional)", max_length=255, required=False
    )
    description = forms.CharField(
        label="Message to the group (optional)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args: Any, groups: QuerySet[MentoringGroup], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["group"].queryset = groups  # type: ignore[attr-defined]


class OptionAddForm(forms.Form):
    start = forms.DateTimeField(
        label="Start of another option",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="In your time zone. It lasts as long as the other options.",
    )


class VoteForm(forms.Form):
    """One Yes / If need be / No question per option, labelled with its time."""

    def __init__(
        self,
        *args: Any,
        options: list[PollOption],
        answers: dict[int, str],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        for option in options:
            self.fields[f"option_{option.pk}"] = forms.ChoiceField(
                label=option_label(option),
                choices=Vote.Answer.choices,
                widget=forms.RadioSelect,
                initial=answers.get(option.pk),
                error_messages={"required": "Choose Yes, If need be or No for this time."},
            )
        self.options = options

    def answers(self) -> dict[int, str]:
        return {o.pk: self.cleaned_data[f"option_{o.pk}"] for o in self.options}


class FinalizeForm(forms.Form):
    option = forms.TypedChoiceField(
        label="The time you choose",
        coerce=int,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose one of the times first."},
    )

    def __init__(self, *args: Any, options: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["option"].choices = options  # type: ignore[attr-defined]


class ReopenForm(forms.Form):
    deadline = forms.DateTimeField(
        label="New deadline (optional)",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="In your time zone. Leave empty to keep the poll open until you close it.",
    )


class GroupImportForm(forms.Form):
    program = forms.ModelChoiceField(label="Programme", queryset=Program.objects.none())
    file = forms.FileField(
        label="CSV file",
        help_text="Columns: group, kind (pair or circle), email, role (mentor or mentee). "
        "One line per person and group.",
    )

    def __init__(self, *args: Any, programs: QuerySet[Program], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["program"].queryset = programs  # type: ignore[attr-defined]

    def clean_file(self) -> str:
        upload = self.cleaned_data["file"]
        if upload.size > 2_000_000:
            raise forms.ValidationError("The file is larger than 2 MB: split it.")
        try:
            return str(upload.read().decode("utf-8-sig"))
        except UnicodeDecodeError as error:
            raise forms.ValidationError(
                "The file is not UTF-8 text: save it as “CSV UTF-8” and try again."
            ) from error


def default_dates() -> tuple[dt.date, dt.date]:
    today = timezone.localdate()
    return today + dt.timedelta(days=1), today + dt.timedelta(days=14)
