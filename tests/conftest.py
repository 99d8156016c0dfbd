"""Shared fixtures. Tests set up data by calling the real services (and the demo seeders that call them)."""

from __future__ import annotations

import contextlib
import os
from decimal import Decimal
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from config.celery import app as celery_app

TINY_PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
ALL_SOURCES = ["tax", "registry", "social_security", "customs", "credit_bureau", "judicial", "internal"]


@pytest.fixture(scope="session", autouse=True)
def _private_dirs(tmp_path_factory):
    """Documents, contracts and the dev seal key of the whole test session live in its temp dir (set for
    this process and, through the environment, for the workers and servers the tests start)."""
    from django.test import override_settings

    root = tmp_path_factory.getbasetemp()
    paths = {"PRIVATE_STORAGE_ROOT": root / "private", "CONTRACT_SIGNING_KEY_DIR": root / "keys"}
    os.environ.update({k: str(v) for k, v in paths.items()})
    with override_settings(**paths):
        yield


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """On SQLite the test database is a file in the session's temp dir, not Django's shared in-memory database:
    concurrency tests run real transactions from several threads, and only a file has SQLite's real locking
    (BEGIN IMMEDIATE waiting on the busy timeout, WAL readers beside the writer) that the embedded default runs on."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        database.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.getbasetemp() / "test_db.sqlite3")


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path_factory):
    # Celery runs eagerly unless a test starts a real worker; caches are per process; files go to a temp dir.
    celery_app.conf.task_always_eager = True
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.AXES_ENABLED = True
    # Fast hashing in tests (the demo users are created per test); production keeps PBKDF2.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", "django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"prequalify": "1000/minute", "anon": "10000/minute"}}
    from django.core.cache import cache
    from django.utils import translation

    cache.clear()
    from loanservice import refcache

    refcache.reset_thread()  # the previous test's policy rows were rolled back
    settings.REFCACHE_GENERATION_FILE = tmp_path_factory.getbasetemp() / "refcache.generation"  # without Redis
    # Core banking is the sandbox; its settlement accounts are empty unless a test funds them (tests of auto-debit
    # do), so a loan's own tests see its installments fall overdue as the borrower left them.
    settings.CORE_BANKING_BACKEND = "sandbox"
    settings.CORE_BANKING_SANDBOX_FUNDS = "empty"
    settings.CORE_BANKING_SANDBOX_DIFFERENCE = ""
    # Each test starts in the default language: the language a test request activated stays on in this thread.
    translation.activate(settings.LANGUAGE_CODE)
    yield


@pytest.fixture
def products(db):
    from casework.demo import seed_products

    seed_products()
    from applications.models import LoanProduct

    return {p.code: p for p in LoanProduct.objects.all()}


@pytest.fixture
def org(db):
    from casework.demo import seed_org

    return seed_org("demo-pass")


@pytest.fixture
def users(org):
    return org


@pytest.fixture
def sms(settings):
    """SMS kept in memory: the list of (phone, text) sent."""
    from loanservice.notifications import LocmemSmsBackend

    settings.SMS_BACKEND = "loanservice.notifications.LocmemSmsBackend"
    LocmemSmsBackend.outbox.clear()
    return LocmemSmsBackend.outbox


def pass_second_factor(client, user) -> None:
    """A test client signed in as `user` counts as having passed the second factor (if the user must use it)."""
    from loanservice import second_factor

    if second_factor.second_factor_required(user):
        session = client.session
        second_factor.mark_verified(session, user)
        session.save()


@pytest.fixture(autouse=True)
def _second_factor_on_login(monkeypatch):
    """Staff signed in by a test (client.login / force_login) have passed the second factor, as at the real sign-in
    (tests/test_security_otp.py turns this off to test the real one)."""
    from django.test.client import ClientMixin

    original = ClientMixin._login

    def _login(self, user, backend=None):
        original(self, user, backend)
        pass_second_factor(self, user)

    monkeypatch.setattr(ClientMixin, "_login", _login)


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def api():
    return client_for


def draft_via_api(client, *, uscc: str, product: str = "xinmiaodai", amount: str = "300000.00", term: int = 12,
                  method: str = "equal_installment", consent: bool = True, documents: bool = True, seed: int = 1) -> int:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from applications.models import LoanProduct
    from tests.factories import enterprise_payload

    r = client.post("/api/v1/enterprises/", enterprise_payload(uscc, seed=seed), format="json")
    assert r.status_code == 201, r.content
    enterprise_id = r.json()["id"]
    if consent:
        verify_via_api(client, enterprise_id)
    r = client.post("/api/v1/applications/", {"enterprise": enterprise_id, "product": product, "amount": amount,
                                              "term_months": term, "repayment_method": method, "purpose": "采购原材料"}, format="json")
    assert r.status_code == 201, r.content
    pk = r.json()["id"]
    if documents:
        for req in LoanProduct.objects.get(code=product).checklist.all():
            if req.required and not req.satisfied_by_source and (req.min_amount is None or Decimal(amount) >= req.min_amount):
                up = SimpleUploadedFile(f"{req.code}.pdf", TINY_PDF, content_type="application/pdf")
                r = client.post(f"/api/v1/applications/{pk}/documents/", {"requirement": req.code, "file": up}, format="multipart")
                assert r.status_code == 201, r.content
    if consent:
        r = client.post(f"/api/v1/applications/{pk}/consent/", {"scopes": ALL_SOURCES}, format="json")
        assert r.status_code == 201, r.content
    return pk


@contextlib.contextmanager
def sms_outbox():
    """SMS sent inside the block, kept in memory: the list of (phone, text)."""
    from django.test import override_settings

    from loanservice.notifications import LocmemSmsBackend

    with override_settings(SMS_BACKEND="loanservice.notifications.LocmemSmsBackend"):
        start = len(LocmemSmsBackend.outbox)
        sent: list = []
        yield sent
        sent.extend(LocmemSmsBackend.outbox[start:])


def last_code(sent) -> str:
    import re

    return re.search(r"\d{6}", sent[-1][1]).group(0)


def verify_via_api(client, enterprise_id: int, *, phone: str | None = None) -> dict:
    """The enterprise's legal representative verified through the API: the SMS code to the phone, then name, ID
    number, phone and code (the registered representative's, read back from the enterprise)."""
    from applications.models import Enterprise

    enterprise = Enterprise.objects.get(pk=enterprise_id)
    phone = phone or f"139{enterprise_id % 10**8:08d}"
    with sms_outbox() as sent:
        r = client.post(f"/api/v1/enterprises/{enterprise_id}/verify-representative/code/", {"phone": phone}, format="json")
        assert r.status_code == 202, r.content
    r = client.post(f"/api/v1/enterprises/{enterprise_id}/verify-representative/",
                    {"name": enterprise.legal_rep_name, "id_number": enterprise.legal_rep_id_number, "phone": phone,
                     "sms_code": last_code(sent)}, format="json")
    assert r.status_code == 201, r.content
    return r.json()


def consent_via_api(client, application_id: int, scopes=None):
    """Verify the representative (if not yet) and authorise `scopes` (all) on a draft, through the API."""
    from applications.models import LoanApplication

    application = LoanApplication.objects.select_related("enterprise").get(pk=application_id)
    if not client.get(f"/api/v1/enterprises/{application.enterprise_id}/verify-representative/").json()["verified"]:
        verify_via_api(client, application.enterprise_id)
    return client.post(f"/api/v1/applications/{application_id}/consent/", {"scopes": scopes or ALL_SOURCES}, format="json")


def signing_code(client, contract_id: int) -> str:
    """The borrower's signing code, sent through the API to the verified phone."""
    with sms_outbox() as sent:
        r = client.post(f"/api/v1/contracts/{contract_id}/sign/code/", format="json")
        assert r.status_code == 202, r.content
    return last_code(sent)


def borrower_sign_via_api(client, contract_id: int, *, sms_code: str | None = None, **body):
    """The borrower signs through the API: the signing code to the verified phone (unless given), then
    `{agree, sms_code, ...body}`; upper-case keywords (HTTP_USER_AGENT, REMOTE_ADDR) go to the request."""
    extra = {k: v for k, v in body.items() if k.isupper()}
    data = {"agree": True, "sms_code": sms_code or signing_code(client, contract_id),
            **{k: v for k, v in body.items() if not k.isupper()}}
    return client.post(f"/api/v1/contracts/{contract_id}/sign/", data, format="json", **extra)


@contextlib.contextmanager
def module_transaction(django_db_blocker):
    """For a module-scoped fixture's data: built once inside a transaction that is rolled back at the end (the
    module's tests then run in savepoints inside it)."""
    from django.db import transaction

    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            yield
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def using_postgres() -> bool:
    return (os.environ.get("DATABASE_URL") or "").startswith("postgres")


@pytest.fixture(scope="session")
def german_credit_csv() -> Path:
    """The German credit data set the scorecard tests train on: shared/data/german_credit.csv beside the checkout, or
    LOANSERVICE_SHARED_DATA (the file or its folder); the tests that need it are skipped where it is absent."""
    override = os.environ.get("LOANSERVICE_SHARED_DATA")
    if override:
        path = Path(override)
        path = path if path.suffix == ".csv" else path / "german_credit.csv"
    else:
        path = Path(__file__).resolve().parents[2] / "shared" / "data" / "german_credit.csv"
    if not path.exists():
        pytest.skip(f"German credit data not found at {path} (set LOANSERVICE_SHARED_DATA)")
    return path
