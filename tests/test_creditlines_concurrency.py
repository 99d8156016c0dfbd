"""Many drawdowns on one line at once never exceed the limit, and one key raced by many requests makes one loan:
each thread on its own connection through the whole stack (the API), on Postgres (the line's row lock) and SQLite."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.concurrency import run_in_parallel
from tests.conftest import client_for
from tests.test_creditlines import make_line

pytestmark = [pytest.mark.django_db(transaction=True)]
THREADS = 8


@pytest.fixture(autouse=True)
def _outbound(settings, tmp_path):
    settings.CORE_BANKING_OUTBOUND_DIR = tmp_path / "outbound"
    settings.CORE_BANKING_BACKEND = "sandbox"


def _post(line, key_for, amount="30000.00"):
    def post(i: int):
        r = client_for(line.borrower).post(f"/api/v1/credit-lines/{line.pk}/drawdowns/",
                                           {"amount": amount, "term_months": 6, "repayment_method": "equal_installment"},
                                           format="json", HTTP_IDEMPOTENCY_KEY=key_for(i))
        return r.status_code, r.json()

    return post


def test_concurrent_drawdowns_never_exceed_the_limit(products, org):
    from creditlines.selectors import line_usage

    line = make_line(limit="100000.00")
    results = run_in_parallel(THREADS, _post(line, lambda i: f"race-{i}"), timeout=180, what="a drawdown")
    codes = sorted(code for code, _body in results)
    assert codes == [201] * 3 + [409] * (THREADS - 3), results
    assert all(body["reason"] == "above_available" for code, body in results if code == 409)
    usage = line_usage(line)
    assert usage["used"] == Decimal("90000.00") and usage["available"] == Decimal("10000.00")
    assert line.drawdowns.count() == 3


def test_one_key_raced_makes_one_loan(products, org):
    from postloan.models import Loan

    line = make_line(limit="100000.00")
    results = run_in_parallel(THREADS, _post(line, lambda i: "same-key"), timeout=180, what="a drawdown")
    assert all(code == 201 for code, _body in results), results
    assert len({body["loan"] for _code, body in results}) == 1
    assert Loan.objects.filter(drawdown__line=line).count() == 1
