"""A real HTTP server on 127.0.0.1 that speaks the mail services' wire formats (shared/providers.md).

It checks each service's authentication and request shape, answers as the service does (Postmark's per-message
ErrorCodes, SendGrid's 202 + X-Message-ID, Mailgun's one id, Resend's permissive errors and idempotency keys,
SES v2 in ``ses_wire``), expands body-once requests into the messages recipients would get, and injects faults
on demand. Its read-only account endpoints (``newsletter doctor``'s key checks) are in ``wire_accounts``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests import ses_wire
from tests import wire_search as search
from tests.wire_accounts import KEY, Accounts, answer

DOMAIN = "news.example.com"
# A message's "To" key in Postmark JSON, compact (ours) or spaced (json.dumps' default, as django-anymail sends it).
# A literal start lets the regex engine skip ahead; what precedes the match is checked apart (see _addresses).
_TO = re.compile(rb'"To"\s*:\s*"([^"\\]*)"')


@dataclass(frozen=True)
class Fault:
    """What the next request gets instead of a normal answer: a status (with headers), or a slow answer."""

    status: int = 0
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    delay: float = 0.0  # process the request normally, then answer this late
    lose: bool = False  # with a delay: drop the request unprocessed (it never reached the service), then answer


@dataclass(frozen=True)
class Received:
    """One message as its recipient would get it."""

    service: str
    to: str
    subject: str
    html: str
    text: str
    headers: dict[str, str]
    delivery_id: str
    at: float = field(default_factory=time.time)  # when the service accepted it


@dataclass
class State:
    received: list[Received] = field(default_factory=list)
    requests: list[tuple[str, int]] = field(default_factory=list)  # (service, body bytes)
    faults: deque[Fault] = field(default_factory=deque)
    inactive: set[str] = field(default_factory=set)
    latency: float = 0.0  # every answer this late, so that a test can kill a sender mid-send
    keep: bool = True  # store every message as received; a benchmark only counts
    recipients: int = 0
    bytes: int = 0
    idempotency: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    accounts: Accounts = field(default_factory=Accounts)  # what the read-only account endpoints report
    indexing_delay: float = 0.0  # seconds before an accepted message shows in the search and events APIs
    searches: int = 0
    samples: dict[str, bytes] = field(default_factory=dict)  # counting mode: the last request body per path
    lock: threading.Lock = field(default_factory=threading.Lock)


class WireServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = State()
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> WireServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.shutdown()
        self.server_close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up waiting (an injected slow answer) is expected; anything else is reported."""
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)

    def by_recipient(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.state.received:
            counts[item.to] = counts.get(item.to, 0) + 1
        return counts


class _Handler(BaseHTTPRequestHandler):
    server: WireServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes; don't wait for delayed ACKs

    def log_message(self, *_: Any) -> None:
        return

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        state = self.server.state
        with state.lock:
            fault = state.faults.popleft() if state.faults else None
        if fault and fault.lose:
            time.sleep(fault.delay)
            return self._answer(504, json.dumps({"message": "lost"}))
        if fault and fault.status:
            return self._answer(fault.status, fault.body or json.dumps({"message": "injected"}), dict(fault.headers))
        route = self._route()
        if route is None:
            return self._answer(404, json.dumps({"message": f"no route {self.path}"}))
        if not state.keep:
            state.samples[self.path] = body  # what the benchmark replays to measure the machine's ceiling
        status, payload, headers = route(body)
        if fault and fault.delay:
            time.sleep(fault.delay)
        if state.latency:
            time.sleep(state.latency)
        self._answer(status, payload, headers)

    def _route(self) -> Any:
        if self.path == "/email/batch":
            return self._postmark
        if self.path == "/email":
            return self._postmark_one
        if self.path == "/v3/mail/send":
            return self._sendgrid
        if re.fullmatch(r"/v3/[^/]+/messages", self.path):
            return self._mailgun
        if self.path == "/emails/batch":
            return self._resend
        if self.path.startswith("/v2/email/"):
            return ses_wire.route(self, self.path)
        return None

    def _answer(self, status: int, payload: str, headers: dict[str, str] | None = None) -> None:
        data = payload.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _record(self, service: str, size: int, items: list[Received]) -> None:
        state = self.server.state
        with state.lock:
            state.recipients += len(items)
            state.bytes += size
            if state.keep:
                state.requests.append((service, size))
                state.received.extend(items)

    def do_GET(self) -> None:
        state = self.server.state
        account = answer(self.path, self.headers, state.accounts)
        if account is None and self.path.startswith("/v2/email/"):
            account = ses_wire.read(self, self.path)
        if account is not None:
            return self._answer(*account)
        found = search.answer(self.path, self.headers, self._searchable())
        if found is not None:
            with state.lock:
                state.searches += 1
            return self._answer(*found)
        if self.path.startswith("/sample/"):
            return self._sample(self.path.removeprefix("/sample"))
        if self.path != "/stats":
            return self._answer(404, "{}")
        with state.lock:
            stats = {"recipients": state.recipients, "bytes": state.bytes}
        self._answer(200, json.dumps(stats))

    def _sample(self, path: str) -> None:
        """The last request body to ``path``, as it came (counting mode keeps one per path)."""
        body = self.server.state.samples.get(path)
        if body is None:
            return self._answer(404, "{}")
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return None

    def _searchable(self) -> list[Received]:
        """What the search APIs show now: messages accepted at least the indexing delay ago."""
        state = self.server.state
        with state.lock:
            return [item for item in state.received if item.at <= time.time() - state.indexing_delay]

    # --- Postmark ---------------------------------------------------------------------------------
    def _postmark(self, body: bytes) -> tuple[int, str, dict[str, str]]:
        if self.headers.get("X-Postmark-Server-Token") != KEY:
            return 401, json.dumps({"ErrorCode": 10, "Message": "Bad or missing Server API token."}), {}
        if not self.server.state.keep:
            return self._postmark_counted(body, batch=True)
        messages = json.loads(body)
        if not isinstance(messages, list) or len(messages) > 500:
            return 422, json.dumps({"ErrorCode": 410, "Message": "Too many batch messages."}), {}
        checked = [self._postmark_message(m) for m in messages]
        self._record("postmark", len(body), [item for _, item in checked if item is not None])
        return 200, json.dumps([answer for answer, _ in checked]), {}

    def _postmark_one(self, body: bytes) -> tuple[int, str, dict[str, str]]:
        """``POST /email``: one message; a refused one is a 422 carrying its ErrorCode, as Postmark answers."""
        if self.headers.get("X-Postmark-Server-Token") != KEY:
            return 401, json.dumps({"ErrorCode": 10, "Message": "Bad or missing Server API token."}), {}
        if not self.server.state.keep:
            return self._postmark_counted(body, batch=False)
        message = json.loads(body)
        if not isinstance(message, dict):
            return 422, json.dumps({"ErrorCode": 402, "Message": "Invalid JSON"}), {}
        answer, item = self._postmark_message(message)
        self._record("postmark", len(body), [item] if item else [])
        return (200 if item else 422), json.dumps(answer), {}

    def _postmark_message(self, m: dict[str, Any]) -> tuple[dict[str, Any], Received | None]:
        """Check one message: Postmark's answer for it, and the message as received if it was accepted."""
        missing = [k for k in ("From", "To", "Subject", "MessageStream") if not m.get(k)]
        missing += [] if m.get("HtmlBody") or m.get("TextBody") else ["HtmlBody or TextBody"]
        if missing:
            return {"ErrorCode": 300, "Message": f"Missing {missing}", "To": m.get("To")}, None
        if "@" not in m["To"]:
            return {"ErrorCode": 300, "Message": "Invalid 'To' address.", "To": m["To"]}, None
        if m["To"] in self.server.state.inactive:
            return {"ErrorCode": 406, "Message": f"Found inactive addresses: {m['To']}.", "To": m["To"]}, None
        headers = {h["Name"]: h["Value"] for h in m.get("Headers", [])}
        item = Received("postmark", m["To"], m["Subject"], m.get("HtmlBody", ""), m.get("TextBody", ""), headers,
                        (m.get("Metadata") or {}).get("delivery_id", ""))
        answer = {"ErrorCode": 0, "Message": "OK", "MessageID": str(uuid.uuid4()), "To": m["To"],
                  "SubmittedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        return answer, item

    def _postmark_counted(self, body: bytes, *, batch: bool) -> tuple[int, str, dict[str, str]]:
        """Counting mode (the benchmark): find each message's ``To`` without decoding the bodies, which costs
        the sender's own two cores far more than the sender's work (a real service parses on its machines).

        In valid JSON an unescaped quote after ``{`` or ``,`` starts a key, so the pattern meets only the
        messages' ``To`` keys, never text inside a body.
        """
        shape = (b"[", b"]") if batch else (b"{", b"}")
        addresses = _addresses(body)
        if not body[:64].lstrip().startswith(shape[0]) or not body[-64:].rstrip().endswith(shape[1]) or not addresses:
            return 422, json.dumps({"ErrorCode": 402, "Message": "Invalid JSON"}), {}
        if batch and len(addresses) > 500:
            return 422, json.dumps({"ErrorCode": 410, "Message": "Too many batch messages."}), {}
        self._record("postmark", len(body), [Received("postmark", to, "", "", "", {}, "") for to in addresses])
        answers = [{"ErrorCode": 0, "Message": "OK", "MessageID": f"{uuid.uuid4()}", "To": to} for to in addresses]
        return 200, json.dumps(answers if batch else answers[0]), {}

    # --- SendGrid ---------------------------------------------------------------------------------
    def _sendgrid(self, body: bytes) -> tuple[int, str, dict[str, str]]:
        if self.headers.get("Authorization") != f"Bearer {KEY}":
            return 401, json.dumps({"errors": [{"message": "authorization required", "field": None}]}), {}
        request = json.loads(body)
        people = request.get("personalizations", [])
        content = {c["type"]: c["value"] for c in request.get("content", [])}
        problems = []
        if not 1 <= len(people) <= 1000:
            problems.append("personalizations: between 1 and 1000")
        if not request.get("from", {}).get("email") or set(content) != {"text/plain", "text/html"}:
            problems.append("from and both content types are required")
        emails = [p["to"][0]["email"] for p in people]
        if len(set(emails)) != len(emails) or any("@" not in e for e in emails):
            problems.append("personalizations.to: invalid or repeated address")
        if problems:
            return 400, json.dumps({"errors": [{"message": p, "field": None} for p in problems]}), {}
        items = []
        for person in people if self.server.state.keep else []:
            subs = person.get("substitutions", {})
            items.append(Received("sendgrid", person["to"][0]["email"], request["subject"],
                                  _substitute(content["text/html"], subs), _substitute(content["text/plain"], subs),
                                  dict(person.get("headers", {})), person.get("custom_args", {}).get("delivery_id", "")))
        if not self.server.state.keep:
            items = [Received("sendgrid", e, "", "", "", {}, "") for e in emails]
        self._record("sendgrid", len(body), items)
        return 202, "", {"X-Message-ID": uuid.uuid4().hex}

    # --- Mailgun ----------------------------------------------------------------------------------
    def _mailgun(self, body: bytes) -> tuple[int, str, dict[str, str]]:
        expected = "Basic " + base64.b64encode(f"api:{KEY}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            return 401, "Forbidden", {}
        kind = self.headers.get("Content-Type", "")
        if not kind.startswith("multipart/form-data"):
            return 400, json.dumps({"message": f"Expecting 'multipart/form-data' but got '{kind}'"}), {}
        form = _multipart(kind, body)
        recipients = form.get("to", [])
        if len(recipients) > 1000:
            return 400, json.dumps({"message": "Too many recipients, max is 1000"}), {}
        try:
            variables = json.loads(form["recipient-variables"][0])
        except (KeyError, ValueError):
            return 400, json.dumps({"message": "'recipient-variables' parameter is not a valid JSON"}), {}
        if set(variables) != set(recipients):
            return 400, json.dumps({"message": "every recipient needs recipient-variables"}), {}
        items = []
        for to in recipients:
            values = variables[to]
            headers = {k[2:]: _mg(v[0], values) for k, v in form.items() if k.startswith("h:")}
            items.append(Received("mailgun", to, form["subject"][0], _mg(form["html"][0], values),
                                  _mg(form["text"][0], values), headers, _mg(form["v:delivery_id"][0], values)))
        self._record("mailgun", len(body), items)
        return 200, json.dumps({"id": f"<{uuid.uuid4().hex}@{DOMAIN}>", "message": "Queued. Thank you."}), {}

    # --- Resend -----------------------------------------------------------------------------------
    def _resend(self, body: bytes) -> tuple[int, str, dict[str, str]]:
        if self.headers.get("Authorization") != f"Bearer {KEY}":
            return 401, json.dumps({"statusCode": 401, "name": "missing_api_key", "message": "Missing API key"}), {}
        key = self.headers.get("Idempotency-Key", "")
        digest = hashlib.sha256(body).hexdigest()
        state = self.server.state
        with state.lock:
            seen = state.idempotency.get(key)
        if seen is not None:
            if seen[0] != digest:
                return 409, json.dumps({"statusCode": 409, "name": "invalid_idempotent_request",
                                        "message": "same key, different payload"}), {}
            return 200, seen[1].decode(), {}
        emails = json.loads(body)
        if not isinstance(emails, list) or len(emails) > 100:
            return 422, json.dumps({"statusCode": 422, "name": "validation_error", "message": "max 100"}), {}
        permissive = self.headers.get("x-batch-validation") == "permissive"
        data, errors, items = [], [], []
        for index, email in enumerate(emails):
            to = email["to"][0]
            if "@" not in to:
                if not permissive:
                    return 422, json.dumps({"statusCode": 422, "name": "validation_error", "message": "bad to"}), {}
                errors.append({"index": index, "message": f"Invalid `to` field: {to}"})
                continue
            data.append({"id": str(uuid.uuid4())})
            tags = {t["name"]: t["value"] for t in email.get("tags", [])}
            items.append(Received("resend", to, email["subject"], email["html"], email["text"],
                                  dict(email.get("headers", {})), tags.get("delivery_id", "")))
        answer = json.dumps({"data": data, "errors": errors}).encode()
        with state.lock:
            if key:
                state.idempotency[key] = (digest, answer)
        self._record("resend", len(body), items)
        return 200, answer.decode(), {}


def _addresses(body: bytes) -> list[str]:
    """Every ``"To"`` key's value in a Postmark request, bodies unparsed. In valid JSON a quote that follows
    ``{``, ``,`` or a blank cannot be inside a string (there it would be escaped), so only keys are counted."""
    return [match[1].decode() for match in _TO.finditer(body) if body[match.start() - 1:match.start()] in _BEFORE_KEY]


_BEFORE_KEY = (b"{", b",", b" ", b"\n", b"\r", b"\t")


def _substitute(text: str, substitutions: dict[str, str]) -> str:
    for tag, value in substitutions.items():
        text = text.replace(tag, value)
    return text


def _mg(text: str, values: dict[str, str]) -> str:
    return re.sub(r"%recipient\.([A-Za-z0-9_]+)%", lambda m: str(values.get(m[1], m[0])), text)


def _multipart(content_type: str, body: bytes) -> dict[str, list[str]]:
    message = message_from_bytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body, policy=policy.HTTP)
    form: dict[str, list[str]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        form.setdefault(str(name), []).append(payload.decode() if isinstance(payload, bytes) else "")
    return form


def main() -> None:
    """Serve on 127.0.0.1 (``--port``, default any) in counting mode until killed; prints the URL first."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    arguments = parser.parse_args()
    server = WireServer()
    if arguments.port:
        server.server_close()
        ThreadingHTTPServer.__init__(server, ("127.0.0.1", arguments.port), _Handler)
    server.state.keep = False
    print(server.url, flush=True)
    sys.stdout.flush()
    server.serve_forever(poll_interval=0.05)


if __name__ == "__main__":
    main()
