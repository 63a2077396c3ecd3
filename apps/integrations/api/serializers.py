"""Request and response shapes. The availability query follows the widely used
Cronofy shape (participants groups, required_duration, query_periods...), so
integrators can switch to Convene without rewriting their queries."""

from __future__ import annotations

import datetime as dt
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.appointments.models import Appointment
from apps.integrations.webhooks import conferencing_data

# Limits keep one query from tying up a worker; they are documented in docs/api.md.
MAX_MEMBERS = 500
MAX_GROUPS = 10
MAX_PERIODS = 50
MAX_SPAN = dt.timedelta(days=35)
MAX_DURATION_MINUTES = 24 * 60


class DurationSerializer(serializers.Serializer):
    minutes = serializers.IntegerField(min_value=1, max_value=MAX_DURATION_MINUTES)


class PeriodSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["end"] <= attrs["start"]:
            raise serializers.ValidationError({"end": "The end must be after the start."})
        if attrs["end"] - attrs["start"] > MAX_SPAN:
            raise serializers.ValidationError(
                {"end": f"A query period may span at most {MAX_SPAN.days} days."}
            )
        return attrs


class MemberSerializer(serializers.Serializer):
    sub = serializers.CharField(required=False, help_text="A Convene user id.")
    email = serializers.EmailField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("sub") and not attrs.get("email"):
            raise serializers.ValidationError("Identify each member by `sub` or `email`.")
        return attrs


@extend_schema_field(
    {"oneOf": [{"type": "string", "enum": ["all"]}, {"type": "integer", "minimum": 1}]}
)
class RequiredField(serializers.Field):
    """`"all"` or a positive number of members."""

    default_error_messages = {"invalid": 'Use "all" or a number of members, such as 2.'}

    def to_internal_value(self, data: Any) -> int | None:
        if data == "all":
            return None
        if isinstance(data, int) and not isinstance(data, bool) and data > 0:
            return data
        if isinstance(data, str) and data.isdigit() and int(data) > 0:
            return int(data)
        self.fail("invalid")
        return None

    def to_representation(self, value: int | None) -> Any:
        return "all" if value is None else value


class GroupSerializer(serializers.Serializer):
    members = MemberSerializer(many=True, allow_empty=False)
    # The API's field names shadow Serializer attributes for mypy only: DRF moves
    # declared fields off the class.
    required = RequiredField(default="all")  # type: ignore[assignment]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # The default ("all") arrives unconverted: normalise it here.
        required = None if attrs.get("required") in (None, "all") else attrs["required"]
        attrs["required"] = required
        if required is not None and required > len(attrs["members"]):
            raise serializers.ValidationError(
                {"required": f"At most {len(attrs['members'])}: the group's size."}
            )
        return attrs


class BufferSerializer(serializers.Serializer):
    before = DurationSerializer(required=False)
    after = DurationSerializer(required=False)


class AvailabilityQuerySerializer(serializers.Serializer):
    participants = GroupSerializer(many=True, allow_empty=False)
    required_duration = DurationSerializer()
    query_periods = PeriodSerializer(many=True, required=False)
    available_periods = PeriodSerializer(
        many=True, required=False, help_text="The older name of query_periods."
    )
    buffer = BufferSerializer(required=False)
    start_interval = DurationSerializer(required=False)
    response_format = serializers.ChoiceField(
        choices=["periods", "slots", "overlapping_slots"], default="periods"
    )
    include_member_statuses = serializers.BooleanField(default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        periods = attrs.pop("query_periods", None) or attrs.pop("available_periods", None)
        attrs.pop("available_periods", None)
        if not periods:
            raise serializers.ValidationError({"query_periods": "Give at least one period."})
        if len(periods) > MAX_PERIODS:
            raise serializers.ValidationError(
                {"query_periods": f"At most {MAX_PERIODS} periods per query."}
            )
        attrs["query_periods"] = periods
        if len(attrs["participants"]) > MAX_GROUPS:
            raise serializers.ValidationError(
                {"participants": f"At most {MAX_GROUPS} groups per query."}
            )
        members = sum(len(group["members"]) for group in attrs["participants"])
        if members > MAX_MEMBERS:
            raise serializers.ValidationError(
                {"participants": f"At most {MAX_MEMBERS} members per query, not {members}."}
            )
        return attrs


class SlotParticipantSerializer(serializers.Serializer):
    sub = serializers.CharField()


class AvailablePeriodSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    participants = SlotParticipantSerializer(many=True)


class MemberStatusSerializer(serializers.Serializer):
    sub = serializers.CharField()
    email = serializers.EmailField()
    sync_status = serializers.ChoiceField(choices=["active", "pending", "disconnected"])


class AvailabilityResponseSerializer(serializers.Serializer):
    available_periods = AvailablePeriodSerializer(many=True, required=False)
    available_slots = AvailablePeriodSerializer(many=True, required=False)
    member_statuses = MemberStatusSerializer(many=True, required=False)


class CalendarSerializer(serializers.Serializer):
    provider_name = serializers.CharField()
    profile_id = serializers.CharField()
    profile_name = serializers.CharField()
    calendar_id = serializers.CharField()
    calendar_name = serializers.CharField()
    calendar_readonly = serializers.BooleanField()
    calendar_deleted = serializers.BooleanField()
    calendar_primary = serializers.BooleanField()
    calendar_integrated_conferencing_available = serializers.BooleanField()
    permission_level = serializers.CharField()


class CalendarsResponseSerializer(serializers.Serializer):
    calendars = CalendarSerializer(many=True)


class PersonSerializer(serializers.Serializer):
    sub = serializers.CharField(source="pk")
    email = serializers.EmailField()
    name = serializers.CharField(source="full_name")


class ConferencingSerializer(serializers.Serializer):
    profile_id = serializers.ChoiceField(choices=["explicit", "integrated"])
    provider_description = serializers.CharField(required=False, allow_blank=True, max_length=200)
    join_url = serializers.URLField(required=False, max_length=500)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["profile_id"] == "explicit" and not attrs.get("join_url"):
            raise serializers.ValidationError(
                {"join_url": "Explicit conferencing needs a join_url."}
            )
        return attrs


class AppointmentSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(read_only=True)
    program = serializers.IntegerField(source="program_id", read_only=True)
    host = PersonSerializer(read_only=True)
    attendees = PersonSerializer(many=True, read_only=True)
    conferencing = serializers.SerializerMethodField()

    class Meta:
        model = Appointment
        fields = [
            "id",
            "program",
            "host",
            "attendees",
            "start",
            "end",
            "title",
            "location",
            "notes",
            "status",
            "conferencing",
            "booked_on_behalf",
            "availability_overridden",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_conferencing(self, obj: Appointment) -> dict[str, str | None] | None:
        return conferencing_data(obj)


class AppointmentCreateSerializer(serializers.Serializer):
    program = serializers.IntegerField()
    host = MemberSerializer()
    attendees = MemberSerializer(many=True, allow_empty=False)
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    title = serializers.CharField(max_length=200)
    notes = serializers.CharField(required=False, allow_blank=True, default="")
    location = serializers.CharField(required=False, allow_blank=True, default="", max_length=255)
    conferencing = ConferencingSerializer(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["end"] <= attrs["start"]:
            raise serializers.ValidationError({"end": "The end must be after the start."})
        return attrs


class AppointmentUpdateSerializer(serializers.Serializer):
    start = serializers.DateTimeField(required=False)
    end = serializers.DateTimeField(required=False)
    title = serializers.CharField(required=False, max_length=200)
    location = serializers.CharField(required=False, allow_blank=True, max_length=255)
    conferencing = ConferencingSerializer(required=False, allow_null=True)


class StatusChangeSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=[s for s in Appointment.Status.values if s != Appointment.Status.REQUESTED]
    )
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=255)


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.JSONField(  # type: ignore[assignment]  # as `required` above
        required=False, help_text="Per field: what is wrong."
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


# Every operation may answer with these; the body is always ErrorSerializer.
ERROR_RESPONSES: dict[int, type[serializers.Serializer]] = dict.fromkeys(
    (400, 401, 403, 404, 409, 429), ErrorSerializer
)
