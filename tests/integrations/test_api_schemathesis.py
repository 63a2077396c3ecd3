"""Property-based testing of the whole API from its own OpenAPI schema: whatever
schemathesis generates, valid or not, no answer is a server error and every answer
matches the schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks

from apps.accounts.models import Role
from apps.integrations.services import api_key_create
from config.wsgi import application
from tests.factories import (
    AppointmentFactory,
    CalendarFactory,
    MembershipFactory,
    ProgramFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

# No server error, and nothing outside the schema: status codes, content types, bodies
# and headers. (Business rules a schema cannot say, such as "the end comes after the
# start", rightly refuse some schema-valid requests: positive_data_acceptance is off.)
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


@pytest.fixture
def wsgi_schema() -> Iterator[Any]:
    # Requests go straight to the WSGI app; like Django's test client, keep it from
    # closing the test's database connection (and its transaction) after each one.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def api_key() -> str:
    program = ProgramFactory()
    host, student = UserFactory(), UserFactory()
    MembershipFactory(user=host, program=program, role=Role.MENTOR)
    MembershipFactory(user=student, program=program, role=Role.PARTICIPANT)
    CalendarFactory(account__owner=host)
    AppointmentFactory(program=program, host=host, attendees=[student])
    _, raw = api_key_create(organization=program.organization, name="fuzz", created_by=None)
    return raw


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_never_errors_and_keeps_to_its_schema(
    wsgi_schema: Any, api_key: str, mode: GenerationMode
) -> None:
    headers = {"Authorization": f"Bearer {api_key}"}
    operations = [result.ok() for result in wsgi_schema.get_all_operations()]
    assert len(operations) >= 6

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=15,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            cache.clear()  # the key's rate limit is not what is under test here
            case.call_and_validate(headers=headers, checks=CHECKS)

        check()
