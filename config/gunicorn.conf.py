"""gunicorn's settings for every deployment of the web tier: the Docker image, docker-compose and the benchmark
stack (bench/common.py) read this one file, so what `make bench` measures is what production runs.

    gunicorn -c config/gunicorn.conf.py config.wsgi

Threads, not more processes, for the waits (Postgres, Redis, the data sources); processes for the cores. On 2 cores
no other size measured better than 3 x 2 (docs/benchmarks.md, "gunicorn and the worker by measurement",
bench/sweep_stack.py); on a bigger machine set WEB_WORKERS to about the number of cores. Environment:
WEB_BIND, WEB_WORKERS, WEB_THREADS, WEB_TIMEOUT.
"""

import os

bind = os.environ.get("WEB_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_WORKERS", "3"))
threads = int(os.environ.get("WEB_THREADS", "2"))
worker_class = "gthread"
timeout = int(os.environ.get("WEB_TIMEOUT", "60"))


def post_worker_init(worker):
    """Each worker, once it has loaded the application: the heap frozen, the collector's young generation widened
    (config/process.py)."""
    from config.process import settle

    settle()
