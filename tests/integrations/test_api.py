"""The REST API: availability semantics, member statuses, calendars, appointments,
validation, limits, isolation between organizations, rate limits."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import Role, User
from apps.appointments.availability import Group, Interval, Member, Query, availability
from apps.appointments.models import Appointment
from apps.calendars.models import BusyBlock, CalendarAccount
from apps.integrations.services import api_key_create, api_key_revoke
from tests.appointments.conftest import Booking
from tests.factories import (
    AppointmentFactory,
    CalendarFactory,
    MembershipFactory,
    OrganizationFactory,
    ProgramFactory,
    UserFactory,
    next_weekday_at,
)

pytestmark = pytest.mark.django_db
MONDAY = dt.datetime(2027, 3, 1, tzinfo=dt.UTC)


def _client(organization: Any) -> APIClient:
    _, raw = api_key_create(organization=organization, name="test", created_by=None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _member(program: Any, *, synced: bool = True, **kwargs: Any) -> User:
    user = UserFactory(**kwargs)
    MembershipFactory(user=user, program=program, role=Role.PARTICIPANT)
    if synced:
        calendar = CalendarFactory(account__owner=user)
        CalendarAccount.objects.filter(pk=calendar.account_id).update(last_synced_at=timezone.now())
    return user


def _busy(user: User, start: dt.datetime, minutes: int) -> None:
    calendar = user.calendars.first() or CalendarFactory(account__owner=user)
    BusyBlock.objects.create(
        calendar=calendar,
        owner=user,
        external_event_id=f"{start}",
        instance_start=start,
        start=start,
        end=start + dt.timedelta(minutes=minutes),
    )


def _query(members: list[User], **extra: Any) -> dict[str, Any]:
    return {
        "participants": [{"members": [{"sub": str(m.pk)} for m in members], "required": "all"}],
        "required_duration": {"minutes": 30},
        "query_periods": [
            {"start": MONDAY.isoformat(), "end": (MONDAY + dt.timedelta(hours=4)).isoformat()}
        ],
        **extra,
    }


def test_availability_periods_leave_out_busy_time() -> None:
    program = ProgramFactory()
    a, b = _member(program), _member(program)
    _busy(a, MONDAY + dt.timedelta(hours=1), 60)
    response = _client(program.organization).post(
        "/api/v1/availability", _query([a, b]), format="json"
    )
    assert response.status_code == 200, response.json()
    periods = [(p["start"], p["end"]) for p in response.json()["available_periods"]]
    assert periods == [
        ("2027-03-01T00:00:00Z", "2027-03-01T01:00:00Z"),
        ("2027-03-01T02:00:00Z", "2027-03-01T04:00:00Z"),
    ]
    assert response.json()["available_periods"][0]["participants"] == [
        {"sub": str(a.pk)},
        {"sub": str(b.pk)},
    ]


def test_available_periods_is_accepted_as_the_older_name() -> None:
    program = ProgramFactory()
    a = _member(program)
    query = _query([a])
    query["available_periods"] = query.pop("query_periods")
    response = _client(program.organization).post("/api/v1/availability", query, format="json")
    assert response.status_code == 200
    assert len(response.json()["available_periods"]) == 1


def test_n_of_m_slots_list_who_is_free_and_match_the_engine() -> None:
    program = ProgramFactory()
    people = [_member(program) for _ in range(3)]
    _busy(people[0], MONDAY, 90)
    _busy(people[1], MONDAY + dt.timedelta(hours=2), 60)
    query = _query(people, response_format="slots", start_interval={"minutes": 30})
    query["participants"][0]["required"] = 2
    response = _client(program.organization).post("/api/v1/availability", query, format="json")
    slots = response.json()["available_slots"]
    # The same question, asked of the engine directly.
    busy = {p.pk: [Interval(b.start, b.end) for b in p.busy_blocks.all()] for p in people}
    expected = availability(
        Query(
            groups=[Group([Member(str(p.pk), busy[p.pk]) for p in people], required=2)],
            periods=[Interval(MONDAY, MONDAY + dt.timedelta(hours=4))],
            duration=dt.timedelta(minutes=30),
            start_interval=dt.timedelta(minutes=30),
        )
    ).slots()
    assert [(s["start"], sorted(p["sub"] for p in s["participants"])) for s in slots] == [
        (s.start.isoformat().replace("+00:00", "Z"), sorted(s.free_member_ids)) for s in expected
    ]
    first = slots[0]
    assert first["start"] == "2027-03-01T00:00:00Z"
    assert {p["sub"] for p in first["participants"]} == {str(people[1].pk), str(people[2].pk)}


def test_buffers_and_overlapping_slots() -> None:
    program = ProgramFactory()
    a = _member(program)
    _busy(a, MONDAY + dt.timedelta(hours=2), 30)
    query = _query(
        [a],
        response_format="overlapping_slots",
        buffer={"before": {"minutes": 15}, "after": {"minutes": 15}},
    )
    response = _client(program.organization).post("/api/v1/availability", query, format="json")
    starts = [s["start"][11:16] for s in response.json()["available_slots"]]
    assert "01:15" in starts  # ends 01:45, 15 minutes before the busy block
    assert "01:30" not in starts
    assert "02:30" not in starts  # would start right after it: no room for the buffer
    assert "02:45" in starts


def test_member_statuses_tell_busy_from_unknown() -> None:
    program = ProgramFactory()
    active = _member(program)
    pending = _member(program, synced=False)
    CalendarFactory(account__owner=pending)  # connected, never synced
    none = _member(program, synced=False)
    gone = _member(program)
    CalendarAccount.objects.filter(owner=gone).update(status=CalendarAccount.Status.DISCONNECTED)
    query = _query([active, pending, none, gone], include_member_statuses=True)
    body = _client(program.organization).post("/api/v1/availability", query, format="json").json()
    statuses = {s["sub"]: s["sync_status"] for s in body["member_statuses"]}
    assert statuses == {
        str(active.pk): "active",
        str(pending.pk): "pending",
        str(none.pk): "disconnected",
        str(gone.pk): "disconnected",
    }


def test_members_by_email_and_of_another_organization() -> None:
    program = ProgramFactory()
    a = _member(program, email="ada@uni.example.edu")
    stranger = _member(ProgramFactory(), email="eve@elsewhere.example.com")
    client = _client(program.organization)
    query = _query([a])
    query["participants"][0]["members"] = [{"email": "ADA@uni.example.edu"}]
    assert client.post("/api/v1/availability", query, format="json").status_code == 200
    response = client.post("/api/v1/availability", _query([a, stranger]), format="json")
    assert response.status_code == 400
    assert str(stranger.pk) in response.json()["error"]["fields"]["participants"][0]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"required_duration": {"minutes": 0}}, "required_duration"),
        ({"query_periods": []}, "query_periods"),
        (
            {"query_periods": [{"start": "2027-03-01T10:00:00Z", "end": "2027-03-01T09:00:00Z"}]},
            "query_periods",
        ),
        (
            {"query_periods": [{"start": "2027-03-01T10:00:00Z", "end": "2027-05-01T09:00:00Z"}]},
            "query_periods",
        ),
        ({"response_format": "banana"}, "response_format"),
        ({"participants": []}, "participants"),
    ],
)
def test_validation_errors_name_the_field(change: dict[str, Any], field: str) -> None:
    program = ProgramFactory()
    a = _member(program)
    response = _client(program.organization).post(
        "/api/v1/availability", {**_query([a]), **change}, format="json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["fields"]


def test_required_must_fit_the_group() -> None:
    program = ProgramFactory()
    a = _member(program)
    query = _query([a])
    query["participants"][0]["required"] = 3
    response = _client(program.organization).post("/api/v1/availability", query, format="json")
    assert "required" in str(response.json()["error"]["fields"])


def test_query_size_limits_are_enforced() -> None:
    program = ProgramFactory()
    a = _member(program)
    query = _query([a])
    query["participants"][0]["members"] = [{"sub": str(a.pk)}] * 501
    response = _client(program.organization).post("/api/v1/availability", query, format="json")
    assert response.status_code == 400
    assert "At most 500 members" in str(response.json())


def test_availability_query_count_does_not_grow_with_members() -> None:
    program = ProgramFactory()
    client = _client(program.organization)
    client.get("/api/v1/appointments")  # the key's first use stamps last_used_at

    def queries(n: int) -> int:
        people = [_member(program) for _ in range(n)]
        for person in people:
            _busy(person, MONDAY, 30)
        with CaptureQueriesContext(connection) as captured:
            assert (
                client.post(
                    "/api/v1/availability",
                    _query(people, include_member_statuses=True),
                    format="json",
                ).status_code
                == 200
            )
        return len(captured)

    assert queries(2) == queries(25)


def test_without_a_key_or_with_a_revoked_one_access_is_refused() -> None:
    program = ProgramFactory()
    assert APIClient().post("/api/v1/availability", {}, format="json").status_code in (401, 403)
    key, raw = api_key_create(organization=program.organization, name="x", created_by=None)
    api_key_revoke(key=key)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = client.get("/api/v1/appointments")
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


def test_calendars_of_a_person() -> None:
    program = ProgramFactory()
    person = _member(program)
    calendar = person.calendars.get()
    client = _client(program.organization)
    body = client.get("/api/v1/calendars", {"user": person.email}).json()
    assert body["calendars"] == [
        {
            "provider_name": "caldav",
            "profile_id": str(calendar.account_id),
            "profile_name": calendar.account.identity,
            "calendar_id": str(calendar.pk),
            "calendar_name": calendar.name,
            "calendar_readonly": False,
            "calendar_deleted": False,
            "calendar_primary": True,
            "calendar_integrated_conferencing_available": False,
            "permission_level": "unrestricted",
        }
    ]
    outsider = _member(ProgramFactory())
    assert client.get("/api/v1/calendars", {"user": str(outsider.pk)}).status_code == 400


def test_an_outsider_key_sees_nothing_of_another_organization(booking: Booking) -> None:
    appointment = AppointmentFactory(program=booking.program, host=booking.host)
    outsider = _client(OrganizationFactory())
    assert outsider.get("/api/v1/appointments").json()["results"] == []
    assert outsider.get(f"/api/v1/appointments/{appointment.pk}").status_code == 404
    response = outsider.post(
        f"/api/v1/appointments/{appointment.pk}/status", {"status": "canceled"}, format="json"
    )
    assert response.status_code == 404
    assert (
        outsider.patch(
            f"/api/v1/appointments/{appointment.pk}", {"title": "x"}, format="json"
        ).status_code
        == 404
    )
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.APPROVED


def test_appointments_create_list_edit_and_transition(booking: Booking) -> None:
    client = _client(booking.program.organization)
    start = next_weekday_at(10)
    payload = {
        "program": booking.program.pk,
        "host": {"sub": str(booking.host.pk)},
        "attendees": [{"email": booking.participant.email}],
        "start": start.isoformat(),
        "end": (start + dt.timedelta(minutes=30)).isoformat(),
        "title": "Portfolio review",
        "conferencing": {
            "profile_id": "explicit",
            "provider_description": "Video",
            "join_url": "https://meet.example.org/x",
        },
    }
    created = client.post("/api/v1/appointments", payload, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["status"] == "approved"
    assert body["booked_on_behalf"] is True
    assert body["conferencing"] == {
        "profile_id": "explicit",
        "join_url": "https://meet.example.org/x",
    }
    again = client.post("/api/v1/appointments", payload, format="json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "slot_taken"
    listing = client.get("/api/v1/appointments", {"host": booking.host.pk, "status": "approved"})
    assert [a["id"] for a in listing.json()["results"]] == [body["id"]]
    later = start + dt.timedelta(hours=1)
    edited = client.patch(
        f"/api/v1/appointments/{body['id']}",
        {"start": later.isoformat(), "end": (later + dt.timedelta(minutes=45)).isoformat()},
        format="json",
    )
    assert edited.status_code == 200
    assert edited.json()["start"] == later.isoformat().replace("+00:00", "Z")
    moved = client.post(
        f"/api/v1/appointments/{body['id']}/status", {"status": "completed"}, format="json"
    )
    assert moved.status_code == 400
    assert "cannot become" in str(moved.json())
    canceled = client.post(
        f"/api/v1/appointments/{body['id']}/status", {"status": "canceled"}, format="json"
    )
    assert canceled.json()["status"] == "canceled"


def test_integrated_conferencing_needs_a_google_or_microsoft_calendar(booking: Booking) -> None:
    start = next_weekday_at(10)
    response = _client(booking.program.organization).post(
        "/api/v1/appointments",
        {
            "program": booking.program.pk,
            "host": {"sub": str(booking.host.pk)},
            "attendees": [{"sub": str(booking.participant.pk)}],
            "start": start.isoformat(),
            "end": (start + dt.timedelta(minutes=30)).isoformat(),
            "title": "x",
            "conferencing": {"profile_id": "integrated"},
        },
        format="json",
    )
    assert response.status_code == 400
    assert "cannot create video meetings" in str(response.json())


def test_a_signed_in_participant_sees_only_their_appointments(booking: Booking) -> None:
    mine = AppointmentFactory(
        program=booking.program, host=booking.host, attendees=[booking.participant]
    )
    AppointmentFactory(
        program=booking.program, host=booking.host, start=mine.end + dt.timedelta(hours=1)
    )
    client = APIClient()
    client.force_authenticate(booking.participant)
    assert [a["id"] for a in client.get("/api/v1/appointments").json()["results"]] == [mine.pk]


def test_rate_limits_answer_429_with_retry_after(settings: Any) -> None:
    program = ProgramFactory()
    key, raw = api_key_create(organization=program.organization, name="x", created_by=None)
    key.rate_limit_per_minute = 3
    key.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    codes = [client.get("/api/v1/appointments").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = client.get("/api/v1/appointments")
    assert int(limited["Retry-After"]) > 0
    assert limited.json()["error"]["code"] == "throttled"


def test_schema_and_docs_are_served_without_login() -> None:
    client = APIClient()
    schema = client.get("/api/schema/", {"format": "json"})
    assert schema.status_code == 200
    assert "/api/v1/availability" in schema.json()["paths"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower()


@pytest.mark.parametrize(
    "ref", [{"email": "a\x00b@example.org"}, {"sub": "1\x00"}, {"sub": "-3"}, {"sub": "9" * 30}]
)
def test_hostile_member_references_are_refused_not_crashing(ref: dict[str, str]) -> None:
    program = ProgramFactory()
    a = _member(program)
    query = _query([a])
    query["participants"][0]["members"] = [ref]
    client = _client(program.organization)
    assert client.post("/api/v1/availability", query, format="json").status_code == 400
    user = next(iter(ref.values()))
    assert client.get("/api/v1/calendars", {"user": user}).status_code == 400


def test_integrated_conferencing_is_what_the_provider_says(monkeypatch: pytest.MonkeyPatch) -> None:
    from apps.calendars.providers.caldav import CalDAVProvider

    program = ProgramFactory()
    person = _member(program)
    client = _client(program.organization)
    monkeypatch.setattr(CalDAVProvider, "integrated_conferencing", True)
    body = client.get("/api/v1/calendars", {"user": str(person.pk)}).json()
    assert body["calendars"][0]["calendar_integrated_conferencing_available"] is True
