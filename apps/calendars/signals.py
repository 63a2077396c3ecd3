"""Signals the calendars app sends to the apps that write into calendars (which it
must not import: dependencies point one way)."""

from django.dispatch import Signal

# Sent after a full sync found events Convene wrote changed or deleted outside
# Convene. Arguments: calendar (Calendar), keys (list of WrittenEvent keys).
written_events_drifted = Signal()

# Sent after a person's calendar account is connected (or reconnected), or becomes
# disconnected (revoked credentials, or the person disconnected it), once committed.
# Arguments: account (CalendarAccount); disconnections also account_id and owner (the
# account may already be deleted) and reason (str).
calendar_account_connected = Signal()
calendar_account_disconnected = Signal()
