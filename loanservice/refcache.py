"""A per-process cache of policy and reference data (pricing policy, scorecard models, the authority matrix,
referral and warning rules, checklists, products, the LPR table, the business date…), kept true by one
generation counter.

Every write to a watched model's table bumps the generation when its transaction commits: the connection's
execute wrapper sees each INSERT, UPDATE, DELETE and TRUNCATE, whoever issues it (the admin, the API, services,
`QuerySet.update()` and `bulk_create()`, data migrations, a test changing policy mid-test); post_migrate bumps too. The counter lives in Redis when REDIS_URL is set
(shared by gunicorn and the workers: a change is seen by every process at its next request or task), otherwise
in a file under var/ (the embedded default: runserver and a `manage.py` command beside it share it; its size is
the generation, a bump appends one byte, which is atomic). A process compares the generation it cached under with the current one once per request or
task (`pinned`), or on every read outside one, and starts afresh when it moved.

Inside the transaction that changed a watched model, reads bypass the cache until it ends (the change is not
committed yet: nobody else must see it, and a rollback must leave nothing behind); tests, which run inside a
transaction that is rolled back, therefore always read the database after they change policy.

    refcache.watch("underwriting.PricingPolicy", "underwriting.ScorecardModel")   # in the app's ready()
    policy = refcache.cached(("pricing_policy",), _read)     # the loader runs once per generation

Cached values are shared by the threads of a process: callers must not mutate them (loaders return tuples,
frozen dicts or model instances that are only read).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Hashable
from typing import TypeVar

from django.conf import settings
from django.db import transaction
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate

T = TypeVar("T")
log = logging.getLogger(__name__)

KEY = "loanservice:refcache:generation"
_lock = threading.Lock()
_values: dict[Hashable, object] = {}
_seen: list = [None]  # the generation _values belong to
_thread = threading.local()  # .pinned: the generation read at the start of this request/task; .dirty: atomic depth
_client = [None, None]  # (url, redis client)
_watched: set[str] = set()  # model labels
_tables: set[str] = set()  # their tables
stats = {"hits": 0, "misses": 0, "bypass": 0, "resets": 0}


def _redis():
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return None
    if _client[0] != url:
        import redis

        _client[0], _client[1] = url, redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    return _client[1]


def _file():
    from pathlib import Path

    return Path(getattr(settings, "REFCACHE_GENERATION_FILE", "") or Path(settings.BASE_DIR) / "var" / "refcache.generation")


def _file_generation():
    import os

    try:
        return os.stat(_file()).st_size
    except FileNotFoundError:
        return 0
    except OSError:
        return None


def generation():
    """The current generation (None when it cannot be read: then nothing is cached)."""
    client = _redis()
    if client is None:
        return _file_generation()
    try:
        value = client.get(KEY)
    except Exception:  # noqa: BLE001 - a cache must never break a request; read the database instead
        log.warning("refcache: Redis unavailable, reading policy from the database", exc_info=True)
        return None
    return int(value) if value is not None else 0


def _reset(gen) -> None:
    with _lock:
        if _values:
            stats["resets"] += 1
        _values.clear()
        _seen[0] = gen


def clear() -> None:
    """Forget everything cached in this process (tests; after a bump)."""
    _reset(None)


def reset_thread() -> None:
    """A test starts: nothing cached, nothing pending from the previous test's rolled-back transaction."""
    clear()
    _thread.dirty = None
    _thread.pinned = None


def bump() -> None:
    """A watched model changed and committed: every process re-reads at its next request or task."""
    client = _redis()
    gen = None
    if client is None:
        path = _file()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "ab") as fh:  # O_APPEND: concurrent bumps each add their byte
                fh.write(b".")
        except OSError:
            log.error("refcache: could not bump the generation in %s", path, exc_info=True)
        gen = _file_generation()
    else:
        try:
            gen = int(client.incr(KEY))
        except Exception:  # noqa: BLE001
            log.error("refcache: could not bump the generation in Redis", exc_info=True)
    _reset(gen)


def _dirty() -> bool:
    """True inside the transaction that changed a watched model (until it commits or rolls back)."""
    depth = getattr(_thread, "dirty", None)
    if depth is None:
        return False
    if transaction.get_connection().in_atomic_block:
        return True
    # Out of every atomic block and no commit callback cleared it: it was rolled back. Drop what may have been
    # cached meanwhile by other threads? No: they never saw the uncommitted change; only this thread's reads
    # bypassed the cache. Nothing to undo.
    _thread.dirty = None
    return False


def changed() -> None:
    """A watched row changed. Bypass the cache in this thread until the transaction ends, bump
    the generation when it commits (at once outside a transaction)."""
    conn = transaction.get_connection()
    if conn.in_atomic_block:
        _thread.dirty = True
        _reset(None)  # nothing cached before the change is trusted in this process either

        def committed():
            _thread.dirty = None
            bump()

        transaction.on_commit(committed, robust=True)
    else:
        bump()


def cached(key: Hashable, loader: Callable[[], T]) -> T:
    """The value of `key` for the current generation, `loader()` when not cached (or when it must not be)."""
    if _dirty():
        stats["bypass"] += 1
        return loader()
    gen = getattr(_thread, "pinned", None)
    if gen is None:
        gen = generation()
    if gen is None:
        stats["bypass"] += 1
        return loader()
    if _seen[0] != gen:
        _reset(gen)
    try:
        value = _values[key]
    except KeyError:
        pass
    else:
        stats["hits"] += 1
        return value  # type: ignore[return-value]
    stats["misses"] += 1
    value = loader()
    with _lock:
        if _seen[0] == gen:
            _values[key] = value
    return value


def pin() -> None:
    """Read the generation once for this request or task (the signal handlers below)."""
    _thread.pinned = generation()


def unpin(**_kwargs) -> None:
    _thread.pinned = None


@contextlib.contextmanager
def pinned():
    pin()
    try:
        yield
    finally:
        unpin()


def watch(*labels: str) -> None:
    """Bump the generation whenever a row of these models ("app.Model") is written, by any statement."""
    from django.apps import apps

    for label in labels:
        if label not in _watched:
            _watched.add(label)
            model = apps.get_model(label)
            _tables.add(model._meta.db_table)
            _tables.update(f.remote_field.through._meta.db_table for f in model._meta.local_many_to_many
                           if f.remote_field.through._meta.auto_created)  # a product added to a criterion


def watched() -> frozenset[str]:
    return frozenset(_watched)


_WRITES = ("INSERT", "UPDATE", "DELETE", "TRUNCA")


def written_tables(sql: str) -> set[str]:
    """The watched tables a statement writes (empty for reads: the common case costs one slice)."""
    head = sql.lstrip()[:6].upper()
    if head not in _WRITES:
        return set()
    words = sql.split(None, 3)
    if head == "UPDATE":
        names = words[1:2]
    elif head == "TRUNCA":  # TRUNCATE "a", "b", … (a transactional test's flush)
        names = sql.split(None, 1)[1].replace(";", " ").replace(",", " ").split()
    else:  # INSERT INTO x / DELETE FROM x
        names = words[2:3]
    return {n.strip('"`').split("(")[0].strip('"`') for n in names} & _tables


def _execute(execute, sql, params, many, context):
    result = execute(sql, params, many, context)
    if isinstance(sql, str) and written_tables(sql):
        changed()
    return result


def _install(connection, **_kwargs) -> None:
    if _execute not in connection.execute_wrappers:
        # First: `connection.execute_wrapper()` blocks pop the last wrapper when they end, and the connection may
        # be opened (and this installed) inside one.
        connection.execute_wrappers.insert(0, _execute)


def connect() -> None:
    """Called once from the kernel's ready(): requests and Celery tasks pin the generation; migrations bump it."""
    from django.core.signals import request_finished, request_started

    request_started.connect(lambda **_kw: pin(), weak=False, dispatch_uid="refcache-request-started")
    request_finished.connect(unpin, dispatch_uid="refcache-request-finished")
    connection_created.connect(_install, dispatch_uid="refcache-connection")
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        _install(conn)
    post_migrate.connect(lambda **_kw: bump(), weak=False, dispatch_uid="refcache-migrate")
    try:
        from celery.signals import task_postrun, task_prerun
    except ImportError:  # pragma: no cover - celery is a dependency
        return
    task_prerun.connect(lambda **_kw: pin(), weak=False, dispatch_uid="refcache-task-prerun")
    task_postrun.connect(unpin, weak=False, dispatch_uid="refcache-task-postrun")
