"""Authentication and transport security: login lockout (django-axes) on the page and the token API, CSRF
on every form the pages render, cookie and header flags under production settings, `check --deploy`
clean, and bandit with no high-severity finding."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import ApplicantFactory, ApplicationFactory

ROOT = Path(__file__).resolve().parent.parent
GOOD = "S3cure-pass-123"


# ---------------------------------------------------------------- lockout
@pytest.mark.django_db
def test_login_page_locks_out_after_repeated_failures(settings):
    from axes.models import AccessAttempt

    owner = ApplicantFactory(username="locked_owner")
    client = Client(REMOTE_ADDR="203.0.113.9")
    for attempt in range(1, settings.AXES_FAILURE_LIMIT + 1):
        r = client.post("/login/", {"username": owner.username, "password": "wrong-password"})
        # The form again with an error, until the failure that reaches the limit locks the account.
        assert r.status_code == (429 if attempt == settings.AXES_FAILURE_LIMIT else 200), (attempt, r.status_code)
        assert "_auth_user_id" not in client.session
    r = client.post("/login/", {"username": owner.username, "password": GOOD})
    assert r.status_code == 429, r.status_code
    assert "_auth_user_id" not in client.session
    assert AccessAttempt.objects.filter(username=owner.username).exists()
    # Another user from the same address is not locked out (lockout is per username and address).
    other = ApplicantFactory(username="unlocked_owner")
    r = Client(REMOTE_ADDR="203.0.113.9").post("/login/", {"username": other.username, "password": GOOD})
    assert r.status_code == 302


@pytest.mark.django_db
def test_token_api_locks_out_after_repeated_failures(settings):
    owner = ApplicantFactory(username="api_locked")
    client = APIClient(REMOTE_ADDR="203.0.113.10")
    for attempt in range(1, settings.AXES_FAILURE_LIMIT + 1):
        r = client.post("/api/v1/auth/token/", {"username": owner.username, "password": "nope-nope"}, format="json")
        assert r.status_code in ((400, 403, 429) if attempt == settings.AXES_FAILURE_LIMIT else (400,)), (attempt, r.status_code)
        assert "token" not in r.json()
    r = client.post("/api/v1/auth/token/", {"username": owner.username, "password": GOOD}, format="json")
    assert r.status_code in (403, 429) and "token" not in r.json()
    assert r.json()["detail"]


# ---------------------------------------------------------------- CSRF on every form
class _Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._current = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and (attrs.get("method") or "get").lower() == "post":
            self._current = {"action": attrs.get("action") or "", "csrf": False}
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and attrs.get("name") == "csrfmiddlewaretoken":
            self._current["csrf"] = True

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def _post_forms(client, url) -> list[dict]:
    r = client.get(url)
    assert r.status_code == 200, (url, r.status_code)
    parser = _Forms()
    parser.feed(r.content.decode())
    for form in parser.forms:
        form["url"] = form["action"] or url
        form["page"] = url
    return parser.forms


@pytest.mark.django_db
def test_every_form_carries_a_csrf_token_and_a_post_without_it_is_refused(products, org):
    from applications.models import LoanApplication

    draft_owner = ApplicantFactory(username="csrf_owner")
    review_pk = ApplicationFactory(seed=7, applicant=draft_owner, stage="submitted").pk
    pending_pk = ApplicationFactory(seed=8, stage="pending_approval").pk
    signed_pk = ApplicationFactory(seed=9, approver=org["demo_branch_approver"], stage="borrower_signed").pk
    from tests.conftest import client_for, draft_via_api
    from tests.factories import uscc_for

    draft_pk = draft_via_api(client_for(draft_owner), uscc=uscc_for("AB", seed=3), seed=3)
    approved = LoanApplication.objects.get(pk=signed_pk)

    pages = {
        None: ["/", "/login/", "/register/", "/products/xinmiaodai/"],
        draft_owner: ["/portal/", "/portal/apply/xinmiaodai/", f"/portal/applications/{draft_pk}/request/",
                      f"/portal/applications/{draft_pk}/documents/", f"/portal/applications/{draft_pk}/consent/",
                      f"/portal/applications/{draft_pk}/review/", f"/portal/applications/{review_pk}/"],
        approved.applicant: [f"/portal/applications/{signed_pk}/"],
        org["demo_rm"]: ["/staff/cases/", f"/staff/cases/{review_pk}/"],
        org["demo_branch_approver"]: ["/staff/approvals/", f"/staff/approvals/{pending_pk}/"],
        org["demo_ops"]: ["/staff/operations/"],
        org["demo_risk"]: ["/staff/risk/"],
    }
    seen = 0
    for user, urls in pages.items():
        strict = Client(enforce_csrf_checks=True)
        if user is not None:
            strict.force_login(user)
        for url in urls:
            for form in _post_forms(strict, url):
                assert form["csrf"], f"form posting to {form['url']} on {form['page']} has no CSRF token"
                r = strict.post(form["url"], {})
                assert r.status_code == 403, f"POST {form['url']} (from {url}) without a CSRF token gave {r.status_code}"
                seen += 1
    assert seen >= 15  # the pages above render at least this many forms; a crawl that finds none proves nothing
    # The API with session authentication enforces CSRF too (token clients are not cookie-borne).
    api = APIClient(enforce_csrf_checks=True)
    api.force_login(org["demo_rm"])
    r = api.post(f"/api/v1/applications/{review_pk}/request-info/", {"message": "请补充"}, format="json")
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    assert LoanApplication.objects.get(pk=review_pk).status == "under_review"


# ---------------------------------------------------------------- production settings
def _prod_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_ALLOW_ASYNC_UNSAFE"))}
    env.update({"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "bank.example",
                "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(), "BLIND_INDEX_KEY": secrets.token_hex(32),
                "DJANGO_SETTINGS_MODULE": "config.settings", **extra})
    env.pop("DATABASE_URL", None)  # the checks need no database
    return env


def test_check_deploy_is_clean_with_production_settings():
    r = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                       env=_prod_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no issues" in r.stdout


def test_production_settings_refuse_to_start_without_a_secret_key():
    env = _prod_env()
    env.pop("SECRET_KEY")
    r = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "SECRET_KEY" in r.stderr


@pytest.mark.parametrize("key", ["FIELD_ENCRYPTION_KEYS", "BLIND_INDEX_KEY"])
def test_production_settings_refuse_to_start_without_personal_data_keys(key):
    env = _prod_env()
    env.pop(key)
    r = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and key in r.stderr


PROBE = r"""
import json, django
django.setup()
from django.conf import settings
from django.test import Client
from django.test.utils import override_settings
# Only the static files' storage differs: the manifest exists after collectstatic, which this probe does not run.
override_settings(STORAGES={**settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}).enable()
r = Client().get("/login/", secure=True, HTTP_HOST="bank.example")
cookie = r.cookies.get(settings.CSRF_COOKIE_NAME)
plain = Client().get("/login/", HTTP_HOST="bank.example")
print(json.dumps({
  "status": r.status_code, "hsts": r.get("Strict-Transport-Security", ""), "frame": r.get("X-Frame-Options", ""),
  "nosniff": r.get("X-Content-Type-Options", ""), "referrer": r.get("Referrer-Policy", ""),
  "csrf_secure": bool(cookie and cookie["secure"]), "csrf_samesite": cookie["samesite"] if cookie else "",
  "plain_status": plain.status_code, "plain_location": plain.get("Location", ""),
  "session_secure": settings.SESSION_COOKIE_SECURE, "session_httponly": settings.SESSION_COOKIE_HTTPONLY,
  "session_samesite": settings.SESSION_COOKIE_SAMESITE, "debug": settings.DEBUG,
}))
"""


def test_cookie_and_header_flags_under_production_settings():
    r = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=_prod_env(DATABASE_URL="sqlite:///:memory:"),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    flags = json.loads(r.stdout.strip().splitlines()[-1])
    assert flags["debug"] is False and flags["status"] == 200
    assert flags["session_secure"] and flags["session_httponly"] and flags["session_samesite"] in ("Lax", "Strict")
    assert flags["csrf_secure"] and flags["csrf_samesite"] in ("Lax", "Strict")
    assert re.match(r"max-age=\d{7,}", flags["hsts"]) and "includeSubDomains" in flags["hsts"]
    assert flags["frame"] == "DENY" and flags["nosniff"] == "nosniff" and flags["referrer"]
    assert flags["plain_status"] == 301 and flags["plain_location"].startswith("https://")


# ---------------------------------------------------------------- static analysis
def test_bandit_finds_no_high_severity_issue():
    bandit = shutil.which("bandit") or str(Path(sys.executable).with_name("bandit"))
    if not Path(bandit).exists():
        pytest.skip("bandit is not installed (pip install -e '.[test]')")
    packages = sorted(p.parent.name for p in ROOT.glob("*/apps.py")) + ["bench"]
    r = subprocess.run([bandit, "-q", "-r", *packages, "-x", "*/migrations/*", "--severity-level", "high", "-f", "json"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    report = json.loads(r.stdout)
    high = [f"{i['filename']}:{i['line_number']} {i['test_id']} {i['issue_text']}" for i in report["results"]
            if i["issue_severity"] == "HIGH"]
    assert not high, "\n".join(high)
    assert report["metrics"]["_totals"]["loc"] > 1000  # it did scan the code


def test_collectstatic_succeeds_with_production_settings(tmp_path):
    """DEBUG=0 serves hashed names from a manifest: every static file must post-process (a vendored script
    pointing at a source map we do not ship breaks the deployment, not the DEBUG=1 test run)."""
    probe = ("import django, sys; django.setup()\n"
             "from django.conf import settings; from django.core.management import call_command\n"
             f"settings.STATIC_ROOT = {str(tmp_path)!r}\n"
             # The same manifest post-processing as WhiteNoise's storage, without its (slow) compression.
             "settings.STORAGES = {**settings.STORAGES, 'staticfiles': "
             "{'BACKEND': 'django.contrib.staticfiles.storage.ManifestStaticFilesStorage'}}\n"
             "call_command('collectstatic', interactive=False, verbosity=0)\n"
             "from django.contrib.staticfiles.storage import staticfiles_storage as s\n"
             "print(s.url('css/app.css'))\n")
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=_prod_env(DATABASE_URL="sqlite:///:memory:"),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert re.search(r"app\.[0-9a-f]{12}\.css", r.stdout), r.stdout
