"""A data provider that hangs or answers garbage: the submission comes back within the source's timeout
(the stub is still hanging when it does: no wall clock needed to prove it), and the case goes to a person
with the failed source named, never approved on missing data."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.conftest import client_for, draft_via_api
from tests.factories import ApplicantFactory, uscc_for
from tests.faults import BadProvider

pytestmark = pytest.mark.django_db(transaction=True)
SOURCE = "credit_bureau"


@pytest.fixture(autouse=True)
def _one_quick_retry(settings):
    settings.UNDERWRITING_SOURCE_RETRIES = 1
    settings.UNDERWRITING_SOURCE_RETRY_SECONDS = 0.01


def _use(stub: BadProvider) -> None:
    from underwriting.models import DataSourceConfig

    DataSourceConfig.objects.update_or_create(source=SOURCE, defaults=dict(
        provider="http", base_url=stub.url, timeout_seconds=Decimal("0.30"), retries=1, backoff_seconds=Decimal("0.01"),
        breaker_threshold=50, breaker_reset_seconds=60))


@pytest.mark.parametrize("mode", ["hang", "garbage", "html", "huge"])
def test_a_bad_provider_refers_the_case_naming_the_source(products, org, mode):
    from applications.models import LoanApplication

    client = client_for(ApplicantFactory(username="owner1"))
    pk = draft_via_api(client, uscc=uscc_for("AB", seed=27), seed=27)  # fast-track material, but for this source
    with BadProvider(mode) as stub:
        _use(stub)
        r = client.post(f"/api/v1/applications/{pk}/submit/")
        if mode == "hang":
            assert not stub.released.is_set()  # answered while the provider still hangs: the timeout cut it
        assert stub.hits >= 1
    assert r.status_code == 200, r.content
    application = LoanApplication.objects.get(pk=pk)
    assert application.status in ("under_review", "prescreen_declined")
    assert application.status != "approved" and application.route != "auto"

    staff = client_for(org["demo_rm"]).get(f"/api/v1/applications/{pk}/").json()
    named = str(staff.get("prescreen_rules", "")) + str((staff.get("score") or {}).get("missing_sources", "")) + str(
        [e.get("reason", "") for e in staff["timeline"]])
    assert SOURCE in named, named
    if application.status == "under_review":
        assert application.route in ("branch", "head_office", "committee")
