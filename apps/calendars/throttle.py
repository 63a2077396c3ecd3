"""A counting semaphore shared by every worker, on the cache (Redis in production).

Microsoft Graph allows 4 concurrent requests per app and mailbox and answers a fifth
with 429; waiting a moment here is cheaper than being throttled there.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator

from django.core.cache import cache

from apps.calendars.providers.base import TransientError

# A slot outlives any single request (timeouts are 30 s), so a crashed worker's slot
# frees itself.
SLOT_SECONDS = 60
WAIT_SECONDS = 30.0
POLL_SECONDS = 0.05


@contextlib.contextmanager
def mailbox_slot(key: str, *, limit: int = 4) -> Iterator[None]:
    """Hold one of `limit` slots for `key` while the block runs."""
    holder = uuid.uuid4().hex
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        for slot in range(limit):
            name = f"calendars:slot:{key}:{slot}"
            if cache.add(name, holder, SLOT_SECONDS):
                try:
                    yield
                finally:
                    cache.delete(name)
                return
        if time.monotonic() > deadline:
            raise TransientError(
                "The calendar service is busy with this mailbox; trying again shortly."
            )
        time.sleep(POLL_SECONDS)
