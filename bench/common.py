"""What every benchmark shares: the benchmark stack's environment (its own Postgres database and Redis DB),
a fresh database, gunicorn and a real Celery worker as subprocesses, percentiles, and results as JSON.

The stack runs with production settings (DEBUG=0) on loopback only; nothing here talks to any other host.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
BIN = Path(PY).parent
RESULTS = ROOT / "var" / "bench"
SHORT = os.environ.get("BENCH_SHORT", "") not in ("", "0")

DB_NAME = os.environ.get("BENCH_DB", "bench")
DB_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")


def stack_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_ALLOW_ASYNC"))}
    env.update({
        "DEBUG": "0", "SECRET_KEY": os.environ.get("BENCH_SECRET_KEY") or secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver", "SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": DB_URL, "REDIS_URL": REDIS_URL, "DJANGO_SETTINGS_MODULE": "config.settings",
        "PRIVATE_STORAGE_ROOT": str(ROOT / "var" / "bench" / "private"),
        "CONTRACT_SIGNING_KEY_DIR": str(ROOT / "var" / "bench" / "keys"), "LOG_LEVEL": "ERROR",
        # Notifications are e-mailed in the request; the console backend's printing is not what we measure.
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend", "SMS_BACKEND": "loanservice.notifications.ConsoleSmsBackend",
        "PYTHONPATH": str(ROOT),
        # The floor endpoint (loanservice.bench_floor, bench/bench_floor.py): mounted on the benchmark stack only.
        "BENCH_FLOOR": "1",
        # DEBUG=0 requires the personal-data keys (docs/security.md): fixed bench-only keys, so that every process of
        # the stack and every run on the same bench database read what another wrote.
        "FIELD_ENCRYPTION_KEYS": os.environ.get("BENCH_FIELD_ENCRYPTION_KEYS") or base64.urlsafe_b64encode(
            hashlib.sha256(b"loanservice bench only: field encryption").digest()).decode(),
        "BLIND_INDEX_KEY": os.environ.get("BENCH_BLIND_INDEX_KEY") or hashlib.sha256(b"loanservice bench only: blind index").hexdigest(),
    })
    env.update(extra)
    return env


_SECRET = secrets.token_urlsafe(50)


def use_stack_env() -> None:
    """Make this process a client of the benchmark stack (Django set up against the bench database)."""
    os.environ.update(stack_env(BENCH_SECRET_KEY=_SECRET, SECRET_KEY=os.environ.get("SECRET_KEY") or _SECRET))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def run(cmd: list[str], *, env: dict | None = None, check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, cwd=ROOT, env=env or stack_env(), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    if not quiet and r.stdout.strip():
        print(r.stdout.rstrip())
    return r


def fresh_database() -> None:
    """Drop and recreate the bench database, migrate (reference data is seeded by post_migrate), flush Redis DB."""
    pg = ["-h", "127.0.0.1", "-U", "postgres"]
    run(["dropdb", *pg, "--if-exists", "--force", DB_NAME], env=os.environ.copy(), quiet=True)
    run(["createdb", *pg, DB_NAME], env=os.environ.copy(), quiet=True)
    run([PY, "manage.py", "migrate", "--noinput", "-v0"], quiet=True)
    run([PY, "manage.py", "collectstatic", "--noinput", "-v0"], quiet=True)  # DEBUG=0 serves hashed static names
    host, port_db = REDIS_URL.rsplit("/", 1)
    port = host.rsplit(":", 1)[1]
    run(["redis-cli", "-p", port, "-n", port_db, "flushdb"], env=os.environ.copy(), quiet=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited ({proc.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback only
                if r.status < 500:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def stack_sizes() -> dict:
    """The stack's sizes as the next `stack()` starts it: BENCH_* overrides, else production's settings."""
    import runpy

    conf = runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))
    from django.conf import settings

    return {"web_workers": int(os.environ.get("BENCH_WEB_WORKERS") or conf["workers"]),
            "threads": int(os.environ.get("BENCH_WEB_THREADS") or conf["threads"]),
            "worker_concurrency": int(os.environ.get("BENCH_WORKER_CONCURRENCY") or settings.CELERY_WORKER_CONCURRENCY)}


@contextlib.contextmanager
def stack(*, web_workers: int | None = None, threads: int | None = None, worker_concurrency: int | None = None):
    """gunicorn + a Celery worker on the bench database and Redis DB; yields the base URL."""
    # Production's sizes (config/gunicorn.conf.py, CELERY_WORKER_CONCURRENCY) unless BENCH_* says otherwise.
    web_workers = web_workers or os.environ.get("BENCH_WEB_WORKERS")
    threads = threads or os.environ.get("BENCH_WEB_THREADS")
    worker_concurrency = worker_concurrency or os.environ.get("BENCH_WORKER_CONCURRENCY")
    sizes = [*(["-w", str(web_workers)] if web_workers else []), *(["--threads", str(threads)] if threads else [])]
    port = free_port()
    env = stack_env(BENCH_SECRET_KEY=_SECRET, SECRET_KEY=_SECRET)
    logs = RESULTS / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    ACCESS_LOG.unlink(missing_ok=True)
    # Production's settings (config/gunicorn.conf.py), with the bench's address, sizes and access log.
    web = subprocess.Popen([str(BIN / "gunicorn"), "-c", str(ROOT / "config" / "gunicorn.conf.py"), "config.wsgi",
                            "-b", f"127.0.0.1:{port}", *sizes, "--log-level", "warning",
                            "--access-logfile", str(ACCESS_LOG), "--access-logformat", "%(U)s %(s)s %(D)s"],
                           cwd=ROOT, env=env, stdout=open(logs / "gunicorn.log", "w"),
                           stderr=subprocess.STDOUT)
    # Production's two workers (docs/architecture.md, "Workers"): the cases' queue, and the batch queue (idle here).
    worker = subprocess.Popen([str(BIN / "celery"), "-A", "config", "worker", "-l", "warning", "-Q", "celery",
                               *(["-c", str(worker_concurrency)] if worker_concurrency else []),
                               "-O", "fair", "--without-gossip", "--without-mingle", "-n", f"bench-{os.getpid()}@%h"],
                              cwd=ROOT, env=env, stdout=open(logs / "worker.log", "w"), stderr=subprocess.STDOUT,
                              start_new_session=True)  # its own process group: worker_paused() stops it and its children
    batch = subprocess.Popen([str(BIN / "celery"), "-A", "config", "worker", "-l", "warning", "-Q", "batch", "-c", "1",
                              "--without-gossip", "--without-mingle", "-n", f"bench-batch-{os.getpid()}@%h"],
                             cwd=ROOT, env=env, stdout=open(logs / "worker-batch.log", "w"), stderr=subprocess.STDOUT,
                             start_new_session=True)
    RUNNING["worker"], RUNNING["worker-batch"] = worker, batch
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_http(f"{url}/api/v1/products/", web)
        _wait_worker(env)
        yield url
    finally:
        for proc in (web, worker, batch):
            proc.terminate()
        for proc in (web, worker, batch):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


RUNNING: dict[str, subprocess.Popen] = {}
ACCESS_LOG = RESULTS / "logs" / "access.log"  # path, status, microseconds: the server side of each request


def server_times(since: int, path_part: str) -> list[float]:
    """Milliseconds gunicorn spent on each request to `path_part` logged after byte offset `since`."""
    with open(ACCESS_LOG, encoding="utf-8") as fh:
        fh.seek(since)
        return [int(parts[2]) / 1000 for line in fh if path_part in line and len(parts := line.split()) == 3]


def access_log_size() -> int:
    return ACCESS_LOG.stat().st_size if ACCESS_LOG.exists() else 0


@contextlib.contextmanager
def worker_paused():
    """Stop the stack's Celery workers (SIGSTOP to their process groups) for the block, then let it go on: what
    the web tier does when the workers run on other machines. Tasks published meanwhile wait in Redis."""
    import signal

    workers = [RUNNING.get(name) for name in ("worker", "worker-batch")]
    if any(w is None or w.poll() is not None for w in workers):
        raise RuntimeError("no running workers to pause")
    for worker in workers:
        os.killpg(worker.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for worker in workers:
            os.killpg(worker.pid, signal.SIGCONT)


def _wait_worker(env: dict, timeout: float = 60) -> None:
    code = "from config.celery import app; import sys; sys.exit(0 if len(app.control.ping(timeout=1)) >= 2 else 1)"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run([PY, "-c", code], cwd=ROOT, env=env, capture_output=True).returncode == 0:
            return
        time.sleep(0.5)
    raise RuntimeError("the Celery workers (cases, batch) did not both answer a ping")


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: list[float]) -> dict:
    return {"n": len(values), "p50": pct(values, 50), "p95": pct(values, 95), "max": max(values) if values else None,
            "mean": statistics.fmean(values) if values else None}


class CpuMeter:
    """Each call's CPU time in this process (`time.process_time()`: Python, Django, DRF, the driver; not Postgres's)
    and the statements it ran, by step; with `cprofile` and/or `pyinstrument`, a profile of each step over its
    measured calls alone (one of the two: both hook the interpreter's profile function, and the one enabled last
    silences the other, so pyinstrument recorded no sample beside cProfile). Needs Django set up (it counts statements
    on the default connection)."""

    def __init__(self, *, cprofile: bool = False, pyinstrument: bool = False):
        if cprofile and pyinstrument:
            raise ValueError("cProfile or pyinstrument, not both: they share the interpreter's profile hook")
        self.samples: dict[str, list[tuple[float, int]]] = {}  # step: [(CPU seconds, statements)]
        self.cprofiles: dict = {}
        self.pyinstruments: dict = {}
        self._cprofile, self._pyinstrument = cprofile, pyinstrument

    def call(self, step: str, fn, *, record: bool = True):
        """fn(), measured under `step` (a warm-up call with record=False is run the same way, counted nowhere)."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        prof = pi = None
        if record and self._cprofile:
            import cProfile

            prof = self.cprofiles.setdefault(step, cProfile.Profile())
        if record and self._pyinstrument:
            from pyinstrument import Profiler

            pi = self.pyinstruments.setdefault(step, Profiler(interval=0.0005))
        with CaptureQueriesContext(connection) as ctx:
            if pi is not None:
                pi.start()
            if prof is not None:
                prof.enable()
            t0 = time.process_time()
            out = fn()
            cpu = time.process_time() - t0
            if prof is not None:
                prof.disable()
            if pi is not None:
                pi.stop()
        if record:
            self.samples.setdefault(step, []).append((cpu, len(ctx)))
        return out

    def summary(self, step: str) -> dict:
        """{n, cpu_ms_median, cpu_ms_mean, cpu_ms_min, cpu_ms_max, queries_median, queries_max} of the step's calls."""
        rows = self.samples.get(step, [])
        if not rows:
            return {"n": 0}
        cpu = [c * 1000 for c, _ in rows]
        queries = [q for _, q in rows]
        return {"n": len(rows), "cpu_ms_median": round(statistics.median(cpu), 2), "cpu_ms_mean": round(statistics.fmean(cpu), 2),
                "cpu_ms_min": round(min(cpu), 2), "cpu_ms_max": round(max(cpu), 2),
                "queries_median": statistics.median(queries), "queries_max": max(queries)}

    def cprofile_text(self, step: str, top: int) -> str:
        """The step's `top` costliest functions, cumulative then by own time."""
        import io
        import pstats

        out = []
        for order, title in (("cumulative", "cumulative"), ("tottime", "own time")):
            buf = io.StringIO()
            pstats.Stats(self.cprofiles[step], stream=buf).sort_stats(order).print_stats(top)
            out.append(f"==== {step} ({title})\n{buf.getvalue()}")
        return "\n".join(out)

    def pyinstrument_write(self, step: str, base: Path) -> None:
        """The step's pyinstrument report as `<base>.html` and `<base>.txt`."""
        pi = self.pyinstruments[step]
        base.parent.mkdir(parents=True, exist_ok=True)
        Path(f"{base}.html").write_text(pi.output_html())
        Path(f"{base}.txt").write_text(pi.output_text(unicode=True, show_all=False))


def save(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False, default=str))
    return path


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None
