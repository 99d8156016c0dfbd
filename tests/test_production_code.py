"""Production code carries no test tooling: no unittest.mock, and time-machine only in the demo's clock (an optional
extra). Where the demo needs another behaviour it uses a real seam, the CONTRACT_RENDERER setting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.contracts_support import accept, contracts_of
from tests.factories import FastTrackApplicationFactory, owner_view

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["config", "casework", "analytics", "marketing", "postloan", "contracts", "approvals", "underwriting",
            "applications", "loanservice"]
TOOLING = re.compile(r"^\s*(from|import)\s+(unittest\.mock|unittest|mock|time_machine)\b", re.M)


def test_no_test_tooling_in_production_code():
    found = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for match in TOOLING.finditer(path.read_text(encoding="utf-8")):
                found.append(f"{path.relative_to(ROOT)}: {match.group(0).strip()}")
    assert found == ["casework/demo/clock.py: import time_machine"], found


@pytest.mark.django_db
def test_the_contract_renderer_is_a_setting(products, org, settings):
    settings.CONTRACT_RENDERER = "casework.demo.history_contract_pdf"
    pk, _owner, client = owner_view(FastTrackApplicationFactory(seed=1))
    accept(client, pk)
    contract = contracts_of(pk)[0]
    from pypdf import PdfReader

    reader = PdfReader(contract.pdf.open("rb"))
    assert reader.metadata.title == f"Loan contract {contract.number} (demo history placeholder)"
    assert len(reader.pages) == 1
