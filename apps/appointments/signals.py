"""What the appointments app tells others (webhooks, mentoring) without importing them."""

from django.dispatch import Signal

# Sent after an appointment is created or changed, once the transaction commits.
# Arguments: appointment (Appointment), change ("created", "updated",
# "status_changed", "canceled", "conferencing_assigned"), actor (User or None); with
# "conferencing_assigned" also provider_description (e.g. "Google Meet").
appointment_changed = Signal()
