"""A stub HTTP server on a free loopback port, for the data-provider tests (tests/faults.py's BadProvider,
tests/test_underwriting_sources.py's StubSources): `with Subclass(...) as stub:` serves `stub.url` on a thread."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer


class LoopbackServer:
    def __init__(self, handler_class):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def release(self) -> None:
        """Before shutdown: let go of requests a stub holds open (a hanging provider)."""

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release()
        self.server.shutdown()
        self.server.server_close()
