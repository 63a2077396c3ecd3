"""Signals the calendars app sends to the apps that write into calendars (which it
must not import: dependencies point one way)."""

from django.dispatch import Signal

# Sent after a full sync found events Convene wrote changed or deleted outside
# Convene. Arguments: calendar (Calendar), keys (list of WrittenEvent keys).
written_events_drifted = Signal()
