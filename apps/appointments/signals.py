"""What the appointments app tells others (webhooks, mentoring) without importing them."""

from django.dispatch import Signal

# Sent after an appointment is created or changed, once the transaction commits.
# Arguments: appointment (Appointment), change ("created", "updated",
# "status_changed", "canceled"), actor (User or None).
appointment_changed = Signal()
