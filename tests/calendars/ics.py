"""Building iCalendar test data by hand, the way other calendar apps write it."""

from __future__ import annotations

import datetime as dt


def stamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def vevent(
    uid: str,
    start: dt.datetime | dt.date,
    end: dt.datetime | dt.date | None = None,
    *,
    summary: str = "Private: dentist",
    extra: str = "",
) -> str:
    """A VCALENDAR with one VEVENT. `extra` adds raw property lines (RRULE, TRANSP...)."""
    if isinstance(start, dt.datetime):
        times = f"DTSTART:{stamp(start)}\r\n"
        if end is not None:
            assert isinstance(end, dt.datetime)
            times += f"DTEND:{stamp(end)}\r\n"
    else:
        times = f"DTSTART;VALUE=DATE:{start:%Y%m%d}\r\n"
        if end is not None:
            times += f"DTEND;VALUE=DATE:{end:%Y%m%d}\r\n"
    lines = "".join(f"{line}\r\n" for line in extra.strip().splitlines() if line.strip())
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Other//Calendar App//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n{times}"
        f"SUMMARY:{summary}\r\nDESCRIPTION:Secret notes\r\nLOCATION:Clinic\r\n{lines}"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
