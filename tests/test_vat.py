"""价税分离 (issue #17): interest income is split from its output VAT inside the ledger, by rules that are data, with the
small and micro exemption (exempt products, exempt borrower classes) as data too."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from ledger.models import JournalEntry, VatRule
from ledger.services import Cr, Dr, Entry, entries_post, entry_post, entry_reverse

D = Decimal
ON = dt.date(2027, 3, 15)
pytestmark = pytest.mark.django_db


def _lines(entry: JournalEntry) -> dict[str, tuple[Decimal, Decimal]]:
    return {x.account.code: (x.debit, x.credit) for x in entry.lines.select_related("account")}


def _accrual(amount: str, **kwargs) -> JournalEntry:
    return entry_post(kind="accrual", value_date=ON, lines=[Dr("1132", D(amount)), Cr("6011", D(amount))], **kwargs)


def test_the_seeded_rules_split_interest_penalty_and_compound_income_at_six_percent():
    rules = {r.income_account.code: r for r in VatRule.objects.select_related("income_account", "payable_account")}
    assert set(rules) == {"6011", "601102", "601103"}
    assert all(r.rate == D("0.0600") and r.payable_account.code == "2221" and r.active for r in rules.values())
    assert rules["6011"].exempt_tax_classes == ["micro", "small"]


@pytest.mark.parametrize(("gross", "net", "vat"), [("106.00", "100.00", "6.00"), ("10.00", "9.43", "0.57"),
                                                    ("0.08", "0.08", "0.00"), ("1234567.89", "1164686.69", "69881.20")])
def test_a_credit_to_interest_income_is_split_into_income_and_output_vat(gross, net, vat):
    entry = _accrual(gross, product="xinmiaodai")
    lines = _lines(entry)
    assert lines["6011"] == (D("0.00"), D(net))
    assert lines.get("2221", (D("0.00"), D("0.00"))) == (D("0.00"), D(vat))
    assert lines["1132"] == (D(gross), D("0.00"))
    assert sum(d for d, _c in lines.values()) == sum(c for _d, c in lines.values())  # still balanced
    assert D(net) + D(vat) == D(gross)
    assert D(vat) == (D(gross) * D("0.06") / D("1.06")).quantize(D("0.01"))


def test_a_debit_to_income_splits_on_the_debit_side_and_a_reversal_mirrors_the_entry():
    adjustment = entry_post(kind="accrual", value_date=ON, product="xinmiaodai",
                            lines=[Dr("6011", D("53.00")), Cr("1132", D("53.00"))])
    assert _lines(adjustment) == {"6011": (D("50.00"), D("0.00")), "2221": (D("3.00"), D("0.00")), "1132": (D("0.00"), D("53.00"))}
    accrual = _accrual("106.00", product="xinmiaodai")
    reversal = entry_reverse(entry=accrual, value_date=ON, reason="错账")
    assert _lines(reversal) == {"1132": (D("0.00"), D("106.00")), "6011": (D("100.00"), D("0.00")), "2221": (D("6.00"), D("0.00"))}


def test_the_small_and_micro_exemption_and_manual_entries_take_no_split():
    assert "2221" not in _lines(_accrual("106.00", product="xinmiaodai", tax_class="micro"))
    assert "2221" in _lines(_accrual("106.00", product="xinmiaodai", tax_class="medium"))
    assert "2221" not in _lines(_accrual("106.00"))  # a manual journal entry (no product): posted as entered
    VatRule.objects.filter(income_account__code="6011").update(exempt_products=["xinmiaodai"])
    assert "2221" not in _lines(_accrual("106.00", product="xinmiaodai"))
    assert "2221" in _lines(_accrual("106.00", product="jingyingdai"))


def test_a_rule_applies_from_its_date_and_only_while_active():
    VatRule.objects.filter(income_account__code="6011").update(effective_from=ON + dt.timedelta(days=1))
    assert "2221" not in _lines(_accrual("106.00", product="xinmiaodai"))
    VatRule.objects.filter(income_account__code="6011").update(effective_from=ON, active=False)
    assert "2221" not in _lines(_accrual("106.00", product="xinmiaodai"))


def test_many_entries_at_once_are_split_the_same_way():
    posted = entries_post([
        Entry(kind="accrual", value_date=ON, product="xinmiaodai", key=f"vat:{k}",
              lines=(Dr("1133", D("21.20")), Cr("601102", D("21.20")))) for k in range(3)])
    assert posted == 3
    for entry in JournalEntry.objects.filter(key__startswith="vat:"):
        assert _lines(entry) == {"1133": (D("21.20"), D("0.00")), "601102": (D("0.00"), D("20.00")), "2221": (D("0.00"), D("1.20"))}
