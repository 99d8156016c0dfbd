"""CPU of one contract-page view (the PDF signatures validated with pyHanko), measured in process with the test
client: time.process_time around each GET, median of 10, on a sealed contract made by the real services, the
cache on Redis when REDIS_URL is set (as in production), else Django's local-memory cache. Printed, never asserted:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> REDIS_URL=redis://127.0.0.1:6379/<n> \\
      .venv/bin/python -m pytest bench/contract_page_cpu.py -q -s -p no:cacheprovider
"""

from __future__ import annotations

import os
import statistics
import time

import pytest

from tests.conftest import *  # noqa: F403  (the test suite's fixtures: products, org, settings per test)

pytestmark = pytest.mark.django_db


def _cpu(fn, repeat: int = 10) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.process_time()
        fn()
        out.append(time.process_time() - started)
    return out


def test_contract_page_cpu(products, org, settings):
    from django.core.cache import cache
    from django.test import Client

    from tests.conftest import borrower_sign_via_api, client_for
    from tests.contracts_support import accept
    from tests.factories import ApplicationFactory, owner_view

    if os.environ.get("REDIS_URL"):
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                       "LOCATION": os.environ["REDIS_URL"]}}
    pk, owner, client = owner_view(ApplicationFactory(approver=org["demo_branch_approver"], stage="approved", seed=7))
    detail = accept(client, pk)
    assert borrower_sign_via_api(client, detail["contract"]).status_code == 200
    assert client_for(org["demo_ops"]).post(f"/api/v1/contracts/{detail['contract']}/sign/", {"agree": True},
                                            format="json").status_code == 200
    pages = Client()
    pages.force_login(owner)
    url = f"/portal/contracts/{detail['contract']}/"
    assert pages.get(url).status_code == 200  # imports, templates, the first validation
    cache.clear()
    cold = _cpu(lambda: (cache.clear(), pages.get(url)))  # every view validates (what happened before the cache)
    warm = _cpu(lambda: pages.get(url))  # repeated views of the same file
    api = client_for(owner)
    verify = lambda: api.post(f"/api/v1/contracts/{detail['contract']}/verify/", format="json")  # noqa: E731
    cache.clear()
    verify_cold = _cpu(lambda: (cache.clear(), verify()))
    verify_warm = _cpu(verify)
    print(f"\nload average {os.getloadavg()}; cache {settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}")
    for name, xs in (("page, validated", cold), ("page, cached", warm), ("verify API, validated", verify_cold),
                     ("verify API, cached", verify_warm)):
        print(f"{name}: median {statistics.median(xs) * 1000:.1f} ms CPU (min {min(xs) * 1000:.1f}, "
              f"max {max(xs) * 1000:.1f}, n={len(xs)})")
    cache.clear()
