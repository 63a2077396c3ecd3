"""What the accounts app tells the others without importing them."""

from django.dispatch import Signal

# Sent by `seed_demo` once the demo organization, programme and people exist, so other
# apps can add their own demo data. Arguments: program (Program), people (dict from
# the email's local part, e.g. "mentor1", to the User).
demo_seeded = Signal()
