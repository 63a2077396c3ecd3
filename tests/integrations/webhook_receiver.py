"""A real HTTP endpoint on 127.0.0.1 that records what Convene POSTs to it and
answers from a script, the way an integrator's receiver would."""

from __future__ import annotations

import http.server
import json
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


class WebhookReceiver:
    """Answers each POST with the next Answer scripted for its path, or else for any
    path (200 once the scripts are used up), and keeps every request, in order.
    Header names are kept in lower case."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.scripts: dict[str | None, list[Answer]] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    headers = {name.lower(): value for name, value in self.headers.items()}
                    receiver.requests.append(Received(self.path, headers, body))
                    answer = receiver._next_answer(self.path)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hooks") -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def answer(self, *answers: Answer, path: str | None = None) -> None:
        with self._lock:
            self.scripts.setdefault(path, []).extend(answers)

    def _next_answer(self, path: str) -> Answer:
        for key in (path, None):
            if self.scripts.get(key):
                return self.scripts[key].pop(0)
        return Answer()

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
