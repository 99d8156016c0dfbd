"""schemathesis against the OpenAPI schema (/api/schema/): every operation, called by authenticated users
on seeded data with bounded generated examples, never answers a 5xx and answers what the schema says
(response bodies and content types of documented statuses).

Three kinds of request per operation and user: examples that fit the schema (their query parameters include
the lists' `limit`, `offset` and filters, which the schema documents); examples that do not (schemathesis'
negative mode: wrong types, out-of-range numbers, missing fields, in the query as in the body); and, for an
operation with a body, a JSON body of each type (object, array, string, number, boolean, null), of which
only the object may be taken.

Each operation runs in its own rolled-back transaction; path ids point at real objects the user may see,
so the calls reach the views' logic, not only their 404. SCHEMATHESIS_MAX_EXAMPLES bounds the examples
per operation and user (default 10; half as many in negative mode)."""

from __future__ import annotations

import json
import os
from decimal import Decimal

import pytest

schemathesis = pytest.importorskip("schemathesis")

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "10"))
JSON_TYPES = {"object": {}, "array": [1, "x"], "string": "text", "number": 12, "boolean": True, "null": None}


def _spec() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str))


def _operations():
    from schemathesis import openapi

    schema = openapi.from_dict(_spec())
    ops = []
    for result in schema.get_all_operations():
        op = result.ok()
        ops.append(op)
    return schema, ops


def _labels():
    try:
        import django

        django.setup()
        _schema, ops = _operations()
        return [f"{op.method.upper()} {op.path}" for op in ops]
    except Exception as exc:  # pragma: no cover - reported by the test below
        return [f"schema failed to load: {exc}"]


LABELS = _labels()


def test_the_schema_loads_and_documents_the_public_contract():
    assert not LABELS[0].startswith("schema failed"), LABELS[0]
    paths = {label.split(" ", 1)[1] for label in LABELS}
    for path in ("/api/v1/applications/{id}/", "/api/v1/applications/{id}/submit/", "/api/v1/contracts/{id}/sign/",
                 "/api/v1/contracts/{id}/disburse/", "/api/v1/loans/{id}/", "/api/v1/products/", "/api/v1/auth/token/"):
        assert path in paths or path.replace("{id}", "{pk}") in paths, path


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Seeded once for the module inside a transaction that is rolled back at the end (each operation then
    runs in its own savepoint, rolled back too)."""
    from django.test import override_settings
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from applications.models import LoanApplication
    from casework.demo import seed_org, seed_products
    from postloan.cob import cob_start
    from tests.conftest import module_transaction
    from tests.factories import ApplicantFactory, ApplicationFactory, FastTrackApplicationFactory

    with module_transaction(django_db_blocker):
        seed_products()
        org = seed_org("demo-pass")
        owner = ApplicantFactory(username="fuzz_owner")
        review = ApplicationFactory(seed=7, applicant=owner, stage="submitted").pk
        disbursed = FastTrackApplicationFactory(seed=1, applicant=owner, stage="disbursed")
        fast, contract, loan = disbursed.pk, disbursed.contracts.get(kind="loan").pk, disbursed.loans.get().pk
        enterprise = LoanApplication.objects.get(pk=fast).enterprise_id
        from casework import lifecycle
        from creditlines.services import drawdown_create
        from tests.factories import sign_as_borrower

        line_case = FastTrackApplicationFactory(seed=2, applicant=owner, product="xinyidai-line", stage="contracting", documents=False)
        line_contract = line_case.contracts.get(kind="loan")
        sign_as_borrower(line_contract, owner)
        lifecycle.fast_track_complete(line_contract.pk)
        line = LoanApplication.objects.get(pk=line_case.pk).credit_line
        drawdown, _created = drawdown_create(line_id=line.pk, user=owner, idempotency_key="fuzz", amount=Decimal("10000.00"),
                                             term_months=6, repayment_method="equal_installment")
        with override_settings(ALLOW_SIMULATED_BUSINESS_DATE=True):  # a run whose progress the reads can fetch
            cob = cob_start(until=timezone.localdate(), by=org["demo_ops"]).pk
        from ledger.core_banking import daily_file_text
        from ledger.services import core_file_import

        core_file = core_file_import(content=daily_file_text([]), business_date=timezone.localdate(), by=org["demo_ops"]).pk
        tokens = {name: Token.objects.get_or_create(user=user)[0].key
                  for name, user in (("applicant", owner), ("rm", org["demo_rm"]), ("operations", org["demo_ops"]),
                                     ("risk", org["demo_risk"]), ("approver", org["demo_branch_approver"]))}
        yield {"tokens": tokens, "ids": {"applications": review, "applications_fast": fast, "contracts": contract,
                                         "loans": loan, "enterprises": enterprise, "cob": cob,
                                         "core_files": core_file, "credit-lines": line.pk,
                                         "drawdowns": drawdown.pk}}


@pytest.fixture
def seeded(world, db):
    # Calling the WSGI handler fires request_started/finished, whose close_old_connections would drop the
    # connection the test's transaction runs in (on Postgres); Django's test client disconnects them too.
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield world
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _path_ids(path: str, ids: dict) -> dict:
    values = {}
    for segment, name in (("/applications/", "applications"), ("/contracts/", "contracts"), ("/loans/", "loans"),
                          ("/enterprises/", "enterprises"), ("/cob/", "cob"), ("/core-files/", "core_files"),
                          ("/credit-lines/", "credit-lines"), ("/drawdowns/", "drawdowns")):
        if segment in path:
            for param in ("id", "pk"):
                if "{" + param + "}" in path:
                    values[param] = ids[name]
    if "{source}" in path:
        values["source"] = "tax"
    return values


def _who(method: str, path: str) -> list[str]:
    if any(s in path for s in ("/disburse/", "/repayments/", "/ledger/", "/cob/", "/business-date/", "/identity-reviews/")):
        return ["operations"]
    if "/data/" in path or "/model-risk/" in path or "/reports/" in path:  # risk's (and approvers') reads
        return ["risk"]
    if "/decide/" in path:
        return ["approver"]
    if any(s in path for s in ("/site-visit/", "/send-to-approval/", "/request-info/")):
        return ["rm"]
    return ["applicant", "rm"] if method == "get" else ["applicant"]


@pytest.mark.parametrize("label", LABELS)
def test_operation_never_500_and_matches_the_schema(seeded, label, settings):
    from django.core.handlers.wsgi import WSGIHandler

    settings.AXES_ENABLED = False  # fuzzed logins must not lock the seeded users out of the next operations
    schema, ops = _operations()
    op = next(o for o in ops if f"{o.method.upper()} {o.path}" == label)
    app = WSGIHandler()
    failures: list[str] = []
    statuses: list[int] = []
    for who in _who(op.method.lower(), op.path):
        token, path_ids = seeded["tokens"][who], _path_ids(op.path, seeded["ids"])
        _fuzz(op, app=app, who=who, token=token, path_ids=path_ids, failures=failures, statuses=statuses)
        _fuzz(op, app=app, who=who, token=token, path_ids=path_ids, failures=failures, statuses=[], negative=True)
        if op.method.lower() in ("post", "put", "patch"):
            _every_json_type(op, app=app, who=who, token=token, path_ids=path_ids, failures=failures)
    assert not failures, "\n\n".join(failures)
    assert statuses, "no example was generated"
    if op.method.lower() == "get" and "/pdf/" not in op.path:
        # Reads reach the view's logic with the seeded ids and the right users, not only its 404.
        assert any(200 <= s < 300 for s in statuses), sorted(set(statuses))


def _fuzz(op, *, app, who: str, token: str, path_ids: dict, failures: list[str], statuses: list[int],
          negative: bool = False) -> None:
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hsettings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

    headers = {"Authorization": f"Token {token}"}
    # A request that does not fit the schema may get any 4xx; what it must never get is a 5xx.
    checks = [not_a_server_error] if negative else [not_a_server_error, response_schema_conformance, content_type_conformance]
    mode = GenerationMode.NEGATIVE if negative else GenerationMode.POSITIVE

    @hsettings(max_examples=max(1, MAX_EXAMPLES // 2) if negative else MAX_EXAMPLES, deadline=None, database=None,
               derandomize=True, suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy(generation_mode=mode, path_parameters=path_ids or None))
    def run(case):
        response = case.call(app=app, headers=headers)
        statuses.append(response.status_code)
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except AssertionError as exc:
            failures.append(f"{who}{' (negative)' if negative else ''}: {exc}"[:3000])
            raise

    try:
        run()
    except Unsatisfiable:
        if not negative:
            raise
        # Nothing of the operation can be made invalid (fixed path ids, no query, no body): nothing to send.
    except Exception as exc:  # hypothesis re-raises the shrunk failure; the other users still run
        if not failures:
            failures.append(f"{who}: {type(exc).__name__}: {exc}"[:3000])


def _every_json_type(op, *, app, who: str, token: str, path_ids: dict, failures: list[str]) -> None:
    """The operation's body as each JSON type: never a 5xx, and anything but an object is refused (4xx)."""
    import re

    headers = {"Authorization": f"Token {token}"}
    path_parameters = {name: path_ids.get(name, 1) for name in re.findall(r"{(\w+)}", op.path)}
    for kind, body in JSON_TYPES.items():
        case = op.Case(path_parameters=path_parameters, body=body, media_type="application/json")
        response = case.call(app=app, headers=headers)
        if response.status_code >= 500 or (kind != "object" and response.status_code < 400):
            failures.append(f"{who}: {op.method.upper()} {op.path} with a JSON {kind} body: {response.status_code} "
                            f"{response.text[:300]}")
