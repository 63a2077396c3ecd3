from __future__ import annotations

from celery import shared_task
from django.core.mail import EmailMultiAlternatives


@shared_task(
    name="accounts.send_email",
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def send_email_task(
    *,
    subject: str,
    body: str,
    from_email: str,
    to: list[str],
    html: str | None = None,
    attachments: list[tuple[str, str, str]] | None = None,
) -> None:
    """Send one rendered email; SMTP hiccups are retried with backoff."""
    message = EmailMultiAlternatives(subject, body, from_email, to)
    if html:
        message.attach_alternative(html, "text/html")
    for filename, content, mimetype in attachments or []:
        message.attach(filename, content, mimetype)
    message.send()
