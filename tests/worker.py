"""Start a real Celery worker on Redis against the test database, for tests that prove the background path."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    """The test database as a DATABASE_URL for a process of its own (a worker, a fresh web process)."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER'] or 'postgres'}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@contextlib.contextmanager
def celery_worker(*, extra_env: dict | None = None, concurrency: int = 2, name: str = "test", purge: bool = True,
                  queues: tuple[str, ...] = ()):
    """`name` tells apart workers started side by side; the second of them passes purge=False (the queue is shared).
    `queues` as production's workers take them (`-Q celery`, `-Q batch`); none = both, as `make worker` does."""
    from config.celery import app

    if purge:
        app.control.purge()
    env = {**os.environ, "DATABASE_URL": test_database_url(), "DJANGO_SETTINGS_MODULE": "config.settings", **(extra_env or {})}
    env.pop("PYTEST_CURRENT_TEST", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-l", "warning", "-P", "threads",
         f"--concurrency={concurrency}", "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"{name}-{os.getpid()}@%h",
         *(["-Q", ",".join(queues)] if queues else [])],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited: {proc.stdout.read().decode(errors='replace')[-2000:]}")
            replies = app.control.ping(timeout=0.5)
            if replies:
                break
        else:
            raise RuntimeError("worker did not start within 30 s")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_for(predicate, *, timeout: float = 30.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()
