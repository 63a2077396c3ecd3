"""The IANA time zones people can choose from."""

from __future__ import annotations

import zoneinfo
from functools import cache

from django.core.exceptions import ValidationError


@cache
def time_zone_names() -> tuple[str, ...]:
    # "Etc/" and legacy aliases (US/Pacific, GMT+3...) confuse people; keep the
    # canonical Area/City names plus UTC.
    names = {
        name
        for name in zoneinfo.available_timezones()
        if "/" in name and not name.startswith(("Etc/", "SystemV/", "US/", "posix/", "right/"))
    }
    return ("UTC", *sorted(names))


def validate_time_zone(value: str) -> None:
    if value not in time_zone_names():
        raise ValidationError(
            "%(value)s is not a time zone we know. Pick one from the list, such as "
            "Europe/London or America/New_York.",
            params={"value": value},
            code="invalid_time_zone",
        )
