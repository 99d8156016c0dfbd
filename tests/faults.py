"""Fault-injection helpers shared by tests/test_faults_*.py: a broker at a closed port, a second Postgres
connection that holds locks or terminates backends, and a stub HTTP data provider that hangs or talks garbage."""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler

from tests.loopback import LoopbackServer


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reset_producer(app) -> None:
    app._pool = None
    with contextlib.suppress(AttributeError, KeyError):
        app.__dict__["amqp"]._producer_pool = None


@contextlib.contextmanager
def broker_down():
    """Celery publishes to a port nobody listens on (the machine's shared Redis is left alone)."""
    from config.celery import app

    saved_url, saved_eager = app.conf.broker_url, app.conf.task_always_eager
    app.conf.broker_url = f"redis://127.0.0.1:{closed_port()}/0"
    app.conf.task_always_eager = False
    _reset_producer(app)
    try:
        yield
    finally:
        app.conf.broker_url, app.conf.task_always_eager = saved_url, saved_eager
        _reset_producer(app)


def pg_side_connection():
    """A second connection to the test database (psycopg2), outside Django's connection handling."""
    import psycopg2
    from django.db import connection

    s = connection.settings_dict
    return psycopg2.connect(dbname=s["NAME"], user=s["USER"] or "postgres", host=s["HOST"] or "127.0.0.1",
                            port=s["PORT"] or 5432, password=s["PASSWORD"] or None)


def waiting_on_lock(side, *, exclude_pid: int) -> list[int]:
    with side.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
                    "AND pid <> %s", [exclude_pid])
        return [r[0] for r in cur.fetchall()]


class BadProvider(LoopbackServer):
    """GET /{source}/{uscc}: `hang` (holds the socket until released), `garbage` (random bytes as JSON),
    `html` (a gateway error page), `huge` (an endless body). Counts hits; never answers sensibly."""

    def __init__(self, mode: str):
        self.mode = mode
        self.hits = 0
        self.released = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                stub.hits += 1
                try:
                    if stub.mode == "hang":
                        stub.released.wait(120)
                        return
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json" if stub.mode != "html" else "text/html")
                    self.end_headers()
                    if stub.mode == "garbage":
                        self.wfile.write(bytes(range(256)) * 64)
                    elif stub.mode == "html":
                        self.wfile.write(b"<html><body>502 Bad Gateway</body></html>")
                    elif stub.mode == "huge":
                        chunk = b'{"pad": "' + b"x" * 65536
                        for _ in range(64):  # 4 MB, more than any payload may be
                            self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        super().__init__(Handler)

    def release(self) -> None:
        self.released.set()
