"""The machine's ceiling for a case: the very request bytes a case sent, posted again and again by a minimal
client (``http.client``, keep-alive, as many connections as the case had batches in flight) to a server.

* to a **discard** server (``python bench/ceiling.py``: reads each body and throws it away), the most this
  machine can move: no database, no personalising, no parsing;
* to the **wire server** (the fake service the case talked to), the same bytes plus the fake service's own
  parsing: the gap between the two is the fake service's work, not ours.
"""

from __future__ import annotations

import http.client
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

CHUNK = 1 << 20


class _Discard(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *_: Any) -> None:
        return

    def do_POST(self) -> None:
        left = int(self.headers.get("Content-Length", 0))
        buffer = bytearray(min(left, CHUNK) or 1)
        view = memoryview(buffer)
        while left > 0:
            got = self.rfile.readinto(view[:min(left, CHUNK)])
            if not got:
                return
            left -= got
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


def serve() -> None:
    """Serve the discard server on 127.0.0.1 until killed; prints its URL first."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Discard)
    server.daemon_threads = True
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever(poll_interval=0.05)


def replay(url: str, path: str, body: bytes, headers: dict[str, str], *, seconds: float,
           concurrency: int) -> tuple[int, float]:
    """Post ``body`` to ``url`` + ``path`` from ``concurrency`` keep-alive connections for about ``seconds``;
    returns (requests answered, seconds taken)."""
    where = urlsplit(url)
    counts = [0] * concurrency
    stop_at = time.perf_counter() + seconds

    def client(index: int) -> None:
        connection = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=120)
        try:
            while time.perf_counter() < stop_at:
                connection.request("POST", path, body=body, headers={**headers, "Content-Type": "application/json"})
                answer = connection.getresponse()
                answer.read()
                if answer.status >= 300:
                    raise SystemExit(f"ceiling replay to {url}{path} answered {answer.status}")
                counts[index] += 1
        finally:
            connection.close()

    began = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts), time.perf_counter() - began


if __name__ == "__main__":
    sys.exit(serve())
