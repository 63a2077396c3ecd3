"""Sending email without holding up a request: render now, deliver from a worker."""

from __future__ import annotations

from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.db import transaction

from apps.accounts.tasks import send_email_task


def email_enqueue(message: EmailMessage) -> None:
    """Queue a rendered message for delivery once the current transaction commits."""
    html = None
    if isinstance(message, EmailMultiAlternatives):
        html = next((str(c) for c, mime in message.alternatives if mime == "text/html"), None)
    # Only text attachments (iCalendar invitations) travel through the broker.
    attachments = [
        (str(name), content if isinstance(content, str) else content.decode(), str(mime))
        for name, content, mime in message.attachments
    ]
    subject, body, sender = str(message.subject), str(message.body), str(message.from_email)
    to = [str(address) for address in message.to]
    transaction.on_commit(
        lambda: send_email_task.delay(
            subject=subject,
            body=body,
            from_email=sender,
            to=to,
            html=html,
            attachments=attachments,
        )
    )
