"""What the mentoring app tells others (webhooks) without importing them."""

from django.dispatch import Signal

# Sent once a poll is finalised and the transaction has committed.
# Arguments: poll (MeetingPoll), appointment (Appointment).
poll_finalized = Signal()
