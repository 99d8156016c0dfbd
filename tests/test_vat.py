"""价税分离 (issue #17): interest income is split from its output VAT inside the ledger, by rules that are data, with the
small and micro exemption (exempt products, exempt borrower classes) as data too."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from ledger.models import JournalEntry, VatExemption, VatRule
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
    assert rules["6011"].exempt_tax_classes == []  # the small and micro exemption has rows of its own (VatExemption)


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


# ---------------------------------------------------------------- the small and micro exemption by class, dates, limit
def test_the_exemption_is_seeded_per_class_with_its_dates_and_the_credit_limit():
    rows = {r.tax_class: r for r in VatExemption.objects.all()}
    assert set(rows) == {"micro", "small", "individual"}
    assert all((r.max_credit, r.effective_from, r.effective_until, r.active) == (
        D("10000000.00"), dt.date(2018, 9, 1), dt.date(2027, 12, 31), True) for r in rows.values())


@pytest.mark.parametrize(("tax_class", "on", "split"), [
    ("micro", ON, False), ("small", ON, False), ("individual", ON, False), ("medium_or_large", ON, True), ("", ON, True),
    ("micro", dt.date(2018, 8, 31), True),    # before 财税〔2018〕91号
    ("micro", dt.date(2027, 12, 31), False),  # the last day of the 2023 extension
    ("small", dt.date(2028, 1, 1), True),     # after it: taxed again unless the policy is extended (a new row)
])
def test_interest_of_an_exempt_class_takes_no_split_while_the_exemption_is_in_force(tax_class, on, split):
    entry = entry_post(kind="accrual", value_date=on, product="xinmiaodai", tax_class=tax_class,
                       lines=[Dr("1132", D("530.00")), Cr("6011", D("530.00"))])
    assert _lines(entry)["6011"] == ((D("0.00"), D("500.00")) if split else (D("0.00"), D("530.00")))
    assert ("2221" in _lines(entry)) == split and (not split or _lines(entry)["2221"] == (D("0.00"), D("30.00")))


def test_a_new_row_extends_the_exemption_and_an_inactive_one_ends_it():
    on = dt.date(2028, 3, 1)
    VatExemption.objects.create(tax_class="micro", effective_from=dt.date(2028, 1, 1), max_credit=D("10000000.00"))
    assert "2221" not in _lines(_accrual_on(on, "micro")) and "2221" in _lines(_accrual_on(on, "small"))
    VatExemption.objects.filter(tax_class="micro").update(active=False)
    assert "2221" in _lines(_accrual_on(on + dt.timedelta(days=1), "micro"))


def _accrual_on(on, tax_class):
    return entry_post(kind="accrual", value_date=on, product="xinmiaodai", tax_class=tax_class,
                      lines=[Dr("1132", D("106.00")), Cr("6011", D("106.00"))])


def _enterprise(**kw):
    from types import SimpleNamespace

    return SimpleNamespace(**{"legal_form": "llc", "industry_code": "C39", "employees": 15, "annual_revenue": D("2500000.00"),
                              **kw})


def test_the_borrowers_class_by_size_standard_and_the_ten_million_limit():
    from postloan.services import vat_tax_class

    limit = D("10000000.00")
    assert vat_tax_class(enterprise=_enterprise(), credit=limit, on=ON) == "micro"  # 工业: under 20 people
    assert vat_tax_class(enterprise=_enterprise(), credit=limit + D("0.01"), on=ON) == ""  # 单户授信 above 10 million
    assert vat_tax_class(enterprise=_enterprise(employees=150, annual_revenue=D("15000000")), credit=D("3000000"), on=ON) == "small"
    assert vat_tax_class(enterprise=_enterprise(employees=500, annual_revenue=D("50000000")), credit=D("3000000"), on=ON) == ""
    assert vat_tax_class(enterprise=_enterprise(industry_code="F5211", employees=8, annual_revenue=D("900000")),
                         credit=D("500000"), on=ON) == "micro"  # 零售业: under 10 people
    assert vat_tax_class(enterprise=_enterprise(legal_form="individual", employees=500, annual_revenue=D("90000000")),
                         credit=D("500000"), on=ON) == "individual"  # 个体工商户 whatever its size
    assert vat_tax_class(enterprise=_enterprise(), credit=D("500000"), on=dt.date(2028, 1, 1)) == ""


def test_a_loan_keeps_its_class_and_its_accruals_follow_it(products, org):
    """The class is judged at disbursement (the loan's size, the borrower's credit); close of business then books the
    interest of an exempt loan whole as income, and of another loan net of 6 % output VAT."""
    import time_machine

    from ledger.selectors import account_balance
    from postloan.models import Loan
    from postloan.services import loan_close_through, vat_tax_class
    from tests.factories import ApplicantFactory, FastTrackLoanFactory

    with time_machine.travel(dt.datetime(2025, 12, 31, 2), tick=False):
        loan = FastTrackLoanFactory(owner=ApplicantFactory(username="vat_owner"), seed=41)
        other = FastTrackLoanFactory(owner=ApplicantFactory(username="vat_other"), seed=43)
    assert loan.tax_class == vat_tax_class(enterprise=loan.enterprise, credit=loan.principal, on=loan.disbursed_on)
    Loan.objects.filter(pk=loan.pk).update(tax_class="micro")
    Loan.objects.filter(pk=other.pk).update(tax_class="")
    through = loan.installments.get(n=1).nominal_due_date
    for x in (loan, other):
        x = Loan.objects.get(pk=x.pk)
        loan_close_through(loan=x, through=through)
        interest = x.installments.get(n=1).interest_accrued
        assert interest > 0
        income = account_balance(account="6011", on=through, reference=f"loan:{x.pk}")
        vat = account_balance(account="2221", on=through, reference=f"loan:{x.pk}")
        if x.tax_class:
            assert (income, vat) == (interest, 0)
        else:
            assert vat == (interest * D("0.06") / D("1.06")).quantize(D("0.01")) > 0 and income + vat == interest
