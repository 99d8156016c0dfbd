"""The concurrency tests' harness: calls run at the same moment, each thread on its own database connection (row
locks on Postgres; BEGIN IMMEDIATE and the busy timeout on the SQLite file), for tests marked
django_db(transaction=True) so that each thread sees the others' commits."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from django.db import OperationalError, connection, transaction


def run_together(calls: Sequence[Callable[[], object]], *, timeout: float = 120, what: str = "a call") -> list:
    """Run the calls in threads released together by a barrier; return their results in order, an exception in
    the place of a call that raised it (for the caller's assertions to show). Each thread closes its own connection.
    Fails if a call is still running after `timeout` seconds (a deadlock or a lock never released)."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i: int, call: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = call()
        except Exception as exc:  # surfaced by the caller's assertions
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), f"{what} is stuck"
    return results


def run_in_parallel(n: int, fn: Callable[[int], object], **kwargs) -> list:
    """fn(0) … fn(n - 1) at the same moment (run_together)."""
    return run_together([lambda i=i: fn(i) for i in range(n)], **kwargs)


@contextmanager
def held_elsewhere(hold: Callable[[], object], *, timeout: float = 30) -> Iterator[None]:
    """hold() runs in a transaction on another connection, which stays open (its locks held) while the block runs
    and commits when the block ends. Fails if hold() raised, or if the block outlasted the holder's `timeout`."""
    held, release = threading.Event(), threading.Event()
    failures: list[Exception] = []

    def run() -> None:
        try:
            with transaction.atomic():
                hold()
                held.set()
                if not release.wait(timeout):
                    failures.append(AssertionError(f"the block took longer than the holder's {timeout} s"))
        except Exception as exc:  # raised in the test's thread below
            failures.append(exc)
        finally:
            held.set()
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert held.wait(timeout), "the holder never took its locks"
        if failures:
            raise failures[0]
        yield
    finally:
        release.set()
        thread.join(timeout)
    assert not thread.is_alive(), "the holder is stuck"
    if failures:
        raise failures[0]


def lockable_elsewhere(model, pk: int) -> bool:
    """Whether another connection can lock the row right now (it holds the lock for no longer than the probe): on
    Postgres a NOWAIT row lock, on SQLite BEGIN IMMEDIATE (the database's write lock) with a short busy timeout."""

    def probe() -> bool:
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA busy_timeout = 300")
        try:
            with transaction.atomic():
                model.objects.select_for_update(nowait=True, of=("self",)).get(pk=pk)
        except OperationalError:
            return False
        return True

    [outcome] = run_together([probe], timeout=30, what="the lock probe")
    if isinstance(outcome, Exception):
        raise outcome
    return outcome
