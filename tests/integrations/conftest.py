from tests.appointments.conftest import booking  # noqa: F401 - the shared booking fixture
