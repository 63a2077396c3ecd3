"""The REST API, version 1. Thin: validation in serializers, reads in selectors, writes
in the appointments services, every query confined to the caller's organizations."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, generics, serializers, status
from rest_framework.fields import DateTimeField
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Program, User
from apps.appointments.booking import appointment_book
from apps.appointments.models import Appointment
from apps.appointments.services import SlotTakenError, appointment_edit, appointment_transition
from apps.calendars.models import Calendar
from apps.calendars.providers import offers_integrated_conferencing
from apps.integrations.api.auth import caller, people_of
from apps.integrations.api.serializers import (
    ERROR_RESPONSES,
    AppointmentCreateSerializer,
    AppointmentSerializer,
    AppointmentUpdateSerializer,
    AvailabilityQuerySerializer,
    AvailabilityResponseSerializer,
    CalendarsResponseSerializer,
    StatusChangeSerializer,
)
from apps.integrations.availability import availability_query, is_user_id

USER_ID = {"type": "integer", "minimum": 1}
PK = OpenApiParameter("pk", {"type": "integer", "minimum": 1}, OpenApiParameter.PATH)


def _person(request: Request, ref: dict[str, str], field: str) -> User:
    people = User.objects.filter(people_of(caller(request).organization_ids)).distinct()
    sub, email = ref.get("sub", ""), ref.get("email", "")
    if sub:
        if not is_user_id(sub):
            raise exceptions.ValidationError({field: [f"{sub!r} is not a user id (sub)."]})
        found = people.filter(pk=int(sub)).first()
    else:
        try:
            email = serializers.EmailField().run_validation(email)
        except exceptions.ValidationError as error:
            raise exceptions.ValidationError({field: error.detail}) from error
        found = people.filter(email__iexact=email).first()
    if found is None:
        raise exceptions.ValidationError(
            {field: [f"Unknown person: {ref.get('sub') or ref.get('email')}."]}
        )
    return found


def _django_errors(
    error: DjangoValidationError | DjangoPermissionDenied,
) -> exceptions.APIException:
    if isinstance(error, DjangoPermissionDenied):
        return exceptions.PermissionDenied(str(error))
    if isinstance(error, SlotTakenError):
        return SlotTaken(" ".join(error.messages))
    return exceptions.ValidationError({"non_field_errors": error.messages})


class SlotTaken(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "slot_taken"
    default_detail = "This slot is not free."


class AvailabilityApi(APIView):
    @extend_schema(
        request=AvailabilityQuerySerializer,
        responses={200: AvailabilityResponseSerializer, **ERROR_RESPONSES},
        summary="When are these people free?",
    )
    def post(self, request: Request) -> Response:
        query = AvailabilityQuerySerializer(data=request.data)
        query.is_valid(raise_exception=True)
        result = availability_query(caller=caller(request), query=dict(query.validated_data))
        # Already plain JSON types; a serializer pass would only add time on big answers.
        return Response(result)


class CalendarListApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("user", str, description="User id (sub) or email.")],
        responses={200: CalendarsResponseSerializer, **ERROR_RESPONSES},
        summary="A person's connected calendars",
    )
    def get(self, request: Request) -> Response:
        ref = request.query_params.get("user", "")
        if not ref:
            raise exceptions.ValidationError({"user": ["Give a user id (sub) or email."]})
        person = _person(request, {"sub": ref} if ref.isdigit() else {"email": ref}, "user")
        calendars = Calendar.objects.filter(owner=person).select_related("account")
        data = [
            {
                "provider_name": c.account.provider,
                "profile_id": str(c.account_id),
                "profile_name": c.account.identity,
                "calendar_id": str(c.pk),
                "calendar_name": c.name,
                "calendar_readonly": c.is_read_only,
                "calendar_deleted": c.is_deleted,
                "calendar_primary": c.is_primary,
                "calendar_integrated_conferencing_available": (
                    offers_integrated_conferencing(c.account.provider) and not c.is_read_only
                ),
                "permission_level": "unrestricted",
            }
            for c in calendars
        ]
        return Response(CalendarsResponseSerializer({"calendars": data}).data)


class AppointmentPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 200


def _appointments(request: Request) -> QuerySet[Appointment]:
    who = caller(request)
    appointments = Appointment.objects.filter(program__organization_id__in=who.organization_ids)
    if who.user is not None and not who.user.is_superuser:
        # A signed-in person sees what they host, attend or booked.
        user = who.user
        appointments = appointments.filter(Q(host=user) | Q(attendees=user) | Q(booked_by=user))
    return (
        appointments.distinct()
        .select_related("host")
        .prefetch_related("attendees")
        .order_by("start", "pk")
    )


class AppointmentListCreateApi(generics.ListAPIView):
    serializer_class = AppointmentSerializer
    pagination_class = AppointmentPagination

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=Appointment.Status.values),
            OpenApiParameter("host", USER_ID, description="User id (sub)."),
            OpenApiParameter("attendee", USER_ID, description="User id (sub)."),
            OpenApiParameter(
                "from", OpenApiTypes.DATETIME, description="Only appointments ending after this."
            ),
            OpenApiParameter(
                "to", OpenApiTypes.DATETIME, description="Only appointments starting before this."
            ),
        ],
        responses={200: AppointmentSerializer(many=True), **ERROR_RESPONSES},
        summary="Appointments",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[Appointment]:
        appointments = _appointments(self.request)
        params = self.request.query_params
        if value := params.get("status"):
            if value not in Appointment.Status.values:
                raise exceptions.ValidationError({"status": [f"Unknown status {value!r}."]})
            appointments = appointments.filter(status=value)
        for name, lookup in (("host", "host_id"), ("attendee", "attendees")):
            if value := params.get(name):
                if not value.isdigit():
                    raise exceptions.ValidationError({name: ["Give a user id (sub)."]})
                appointments = appointments.filter(**{lookup: int(value)})
        for name, lookup in (("from", "end__gt"), ("to", "start__lt")):
            if value := params.get(name):
                try:
                    moment = DateTimeField().run_validation(value)
                except exceptions.ValidationError as error:
                    raise exceptions.ValidationError({name: error.detail}) from error
                appointments = appointments.filter(**{lookup: moment})
        return appointments

    @extend_schema(
        request=AppointmentCreateSerializer,
        responses={201: AppointmentSerializer, **ERROR_RESPONSES},
        summary="Book an appointment",
    )
    def post(self, request: Request) -> Response:
        payload = AppointmentCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        who = caller(request)
        program = Program.objects.filter(
            pk=data["program"], organization_id__in=who.organization_ids
        ).first()
        if program is None:
            raise exceptions.ValidationError({"program": ["Unknown programme for this caller."]})
        conferencing = data.get("conferencing") or {}
        try:
            appointment = appointment_book(
                program=program,
                host=_person(request, data["host"], "host"),
                attendees=[_person(request, ref, "attendees") for ref in data["attendees"]],
                start=data["start"],
                end=data["end"],
                title=data["title"],
                notes=data["notes"],
                location=data["location"],
                join_url=conferencing.get("join_url", ""),
                integrated_conferencing=conferencing.get("profile_id") == "integrated",
                booked_by=who.user,
            )
        except (DjangoValidationError, DjangoPermissionDenied) as error:
            raise _django_errors(error) from error
        return Response(AppointmentSerializer(appointment).data, status=status.HTTP_201_CREATED)


class AppointmentDetailApi(APIView):
    def _get(self, request: Request, pk: int) -> Appointment:
        appointment = _appointments(request).filter(pk=pk).first()
        if appointment is None:
            raise exceptions.NotFound("No such appointment.")
        return appointment

    @extend_schema(
        responses={200: AppointmentSerializer, **ERROR_RESPONSES}, summary="One appointment"
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(AppointmentSerializer(self._get(request, pk)).data)

    @extend_schema(
        parameters=[PK],
        request=AppointmentUpdateSerializer,
        responses={200: AppointmentSerializer, **ERROR_RESPONSES},
        summary="Change time, place or conferencing",
    )
    def patch(self, request: Request, pk: int) -> Response:
        appointment = self._get(request, pk)
        payload = AppointmentUpdateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        conferencing = data.get("conferencing", ...)
        join_url = appointment.join_url
        integrated = appointment.integrated_conferencing
        if conferencing is None:
            join_url, integrated = "", False
        elif isinstance(conferencing, dict):
            integrated = conferencing.get("profile_id") == "integrated"
            join_url = conferencing.get("join_url", "")
        try:
            appointment = appointment_edit(
                appointment=appointment,
                actor=caller(request).user,
                start=data.get("start", appointment.start),
                end=data.get("end", appointment.end),
                location=data.get("location", appointment.location),
                join_url=join_url,
                integrated_conferencing=integrated,
                title=data.get("title"),
            )
        except (DjangoValidationError, DjangoPermissionDenied) as error:
            raise _django_errors(error) from error
        return Response(AppointmentSerializer(self._get(request, appointment.pk)).data)


class AppointmentStatusApi(APIView):
    @extend_schema(
        parameters=[PK],
        request=StatusChangeSerializer,
        responses={200: AppointmentSerializer, **ERROR_RESPONSES},
        summary="Change status",
    )
    def post(self, request: Request, pk: int) -> Response:
        appointment = _appointments(request).filter(pk=pk).first()
        if appointment is None:
            raise exceptions.NotFound("No such appointment.")
        payload = StatusChangeSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            appointment_transition(
                appointment=appointment,
                actor=caller(request).user,
                to=payload.validated_data["status"],
                note=payload.validated_data["note"],
            )
        except (DjangoValidationError, DjangoPermissionDenied) as error:
            raise _django_errors(error) from error
        return Response(AppointmentSerializer(_appointments(request).get(pk=pk)).data)
