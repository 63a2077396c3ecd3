"""Driving the OAuth connect flow in tests: Convene's pages through Django's test
client, the fake provider's consent page over real HTTP, as a browser would."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import urlsplit

import requests
from django.http import HttpResponse
from django.test import Client, TestCase

HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')
SCOPE_BOX = re.compile(r'<input type="checkbox" name="scope" value="([^"]+)"')


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def start_connect(client: Client, page: str) -> str:
    """Open Convene's connect (or reconnect) page, press its button, and return the
    provider's authorization URL Convene redirects to."""
    response = client.get(page)
    assert response.status_code == 200
    started = client.post(response.context["action"])
    assert started.status_code == 302, started.content
    return str(started["Location"])


def finish_connect(client: Client, callback: str) -> Any:
    """Come back to Convene's callback; what Convene queues after commit runs."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.get(path_of(callback))
    return response


def google_consent(
    authorize_url: str, *, email: str, untick: frozenset[str] = frozenset(), allow: bool = True
) -> str:
    """The person on Google's consent page: returns where Google sends them back."""
    page = requests.get(authorize_url, timeout=10)
    assert page.status_code == 200, page.text
    form: dict[str, Any] = {name: html.unescape(value) for name, value in HIDDEN.findall(page.text)}
    form["scope"] = [s for s in SCOPE_BOX.findall(page.text) if s not in untick]
    form["email"] = email
    form["action"] = "allow" if allow else "cancel"
    base = f"{urlsplit(authorize_url).scheme}://{urlsplit(authorize_url).netloc}"
    answer = requests.post(
        f"{base}/o/oauth2/v2/auth/consent", data=form, allow_redirects=False, timeout=10
    )
    assert answer.status_code == 302, answer.text
    return str(answer.headers["Location"])


def _post_into_django(url: str, headers: dict[str, str], body: bytes) -> HttpResponse:
    """A fake's outgoing call (a push notification, a validation request) delivered to
    Convene's test client instead of the network, with on-commit work run."""
    meta = {
        "HTTP_" + name.upper().replace("-", "_"): value
        for name, value in headers.items()
        if name.lower() not in {"content-length", "content-type"}
    }
    with TestCase.captureOnCommitCallbacks(execute=True):
        return Client().post(
            path_of(url),
            data=body,
            content_type=headers.get("Content-Type", "application/octet-stream"),
            **meta,
        )


def google_into_django(url: str, headers: dict[str, str], body: bytes) -> int:
    return _post_into_django(url, headers, body).status_code


def graph_into_django(url: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
    response = _post_into_django(url, headers, body)
    return response.status_code, response.get("Content-Type", ""), response.content


def graph_consent(authorize_url: str, *, accept: bool = True) -> str:
    """The person on Microsoft's consent page (all or nothing): returns where Microsoft
    sends them back."""
    page = requests.get(authorize_url, timeout=10)
    assert page.status_code == 200, page.text
    action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    request_id = re.search(r'name="request" value="([^"]+)"', page.text)
    assert action and request_id, page.text
    parts = urlsplit(authorize_url)
    answer = requests.post(
        f"{parts.scheme}://{parts.netloc}{html.unescape(action.group(1))}",
        data={"request": request_id.group(1), "decision": "accept" if accept else "cancel"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text
    return str(answer.headers["Location"])
