"""Every persona's landing page and main API read answer as the first request of a fresh process. The reads compiled
once per process (loanservice/prepared.py) compile with whatever the first request brings: a lazy request.user
once made every staff page answer 500 in a fresh `make run`, while the suite's long-lived process had always
compiled the shapes before a page asked."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.approvals_support import fast_passwords  # noqa: F401
from tests.worker import ROOT, test_database_url

PLAN = [
    ["demo_rm", ["/", "/api/v1/applications/"]],
    ["demo_branch_approver", ["/", "/api/v1/applications/"]],
    ["demo_applicant", ["/", "/api/v1/applications/", "/api/v1/enterprises/"]],
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_passwords")
def test_landing_pages_and_api_reads_as_the_first_request_of_a_process(org):
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    staff = [u for u in get_user_model().objects.filter(username__startswith="demo_").exclude(username="demo_applicant")
             .order_by("username").values_list("username", flat=True) if u not in {p[0] for p in PLAN}]
    plan = []
    for username, urls in PLAN + [[u, ["/"]] for u in staff]:  # every other persona's landing page too
        client = Client()
        client.force_login(get_user_model().objects.get(username=username))  # past the second factor (conftest)
        plan.append([username, client.cookies[settings.SESSION_COOKIE_NAME].value, urls])
    env = {**os.environ, "DATABASE_URL": test_database_url(), "DJANGO_SETTINGS_MODULE": "config.settings",
           "ALLOWED_HOSTS": "testserver", "REDIS_URL": "", "AXES_ENABLED": "0"}
    env.pop("PYTEST_CURRENT_TEST", None)
    done = subprocess.run([sys.executable, "-m", "tests.fresh_process", json.dumps(plan)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(got) == sum(len(urls) for _u, _key, urls in plan)
    failed = {request: answer for request, answer in got.items() if answer[0] != 200}
    assert not failed, failed
    assert got["demo_rm /"][1] == "/staff/rm/" or got["demo_rm /"][1].startswith("/staff/")
    assert got["demo_applicant /"][1].startswith("/portal")
