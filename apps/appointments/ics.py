"""iCalendar files for people: the .ics download and email invitations (RFC 5546)."""

from __future__ import annotations

import datetime as dt

import icalendar
from django.conf import settings
from django.urls import reverse

from apps.appointments.models import Appointment
from apps.calendars.providers import ical

CANCELLED = (Appointment.Status.DECLINED, Appointment.Status.CANCELED)


def appointment_ics(appointment: Appointment, *, method: str = "PUBLISH") -> str:
    """One VEVENT for the appointment. `method` is PUBLISH (a download), REQUEST (an
    invitation or update) or CANCEL. The UID stays the same for the appointment's whole
    life and SEQUENCE grows with each change, so calendar apps update in place."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", ical.PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", method)
    event = icalendar.Event()
    event.add("uid", ical.convene_uid(f"appointment-{appointment.pk}"))
    event.add("dtstamp", dt.datetime.now(dt.UTC))
    event.add("dtstart", appointment.start)
    event.add("dtend", appointment.end)
    event.add("summary", appointment.title)
    event.add("sequence", appointment.transitions.count())
    link = settings.SITE_URL + reverse("appointment_detail", args=[appointment.pk])
    description = f"Booked through Convene: {link}"
    if appointment.join_url:
        description = f"Join: {appointment.join_url}\n{description}"
        event.add("url", appointment.join_url)
    event.add("description", description)
    if appointment.location:
        event.add("location", appointment.location)
    organizer = icalendar.vCalAddress(f"mailto:{appointment.host.email}")
    organizer.params["cn"] = str(appointment.host)
    event.add("organizer", organizer)
    for person in appointment.attendees.all():
        attendee = icalendar.vCalAddress(f"mailto:{person.email}")
        attendee.params["cn"] = str(person)
        attendee.params["role"] = "REQ-PARTICIPANT"
        event.add("attendee", attendee)
    cancelled = appointment.status in CANCELLED or method == "CANCEL"
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    calendar.add_component(event)
    return calendar.to_ical().decode()
