from datetime import date

import pytest

from underwriting.features import (
    CATEGORICAL_FEATURES,
    FEATURE_SOURCES,
    FEATURES,
    NUMERIC_FEATURES,
    PROFILE_FIELDS,
    derive_features,
)
from underwriting.providers import SandboxProvider, make_uscc
from underwriting.sources import SOURCES

AS_OF = date(2025, 6, 30)

EXPECTED_KEYS = {
    "years_in_business",
    "revenue_12m",
    "revenue_growth",
    "tax_burden",
    "months_filed",
    "settlement_inflow_trend",
    "headcount",
    "headcount_trend",
    "leverage",
    "overdue_count_24m",
    "max_dpd_24m",
    "inquiries_3m",
    "enforcement_cases",
    "litigation_cases_12m",
    "deposit_to_revenue",
    "tax_grade",
}


def payloads():
    return {
        "tax": {
            "tax_grade": "B",
            "months_filed": 48,
            "tax_paid_12m": "120000.00",
            "revenue_12m": "4000000.00",
            "revenue_prev_12m": "3200000.00",
            "major_violation": False,
        },
        "registry": {
            "status": "active",
            "founded_on": "2015-06-30",
            "registered_capital": "1000000.00",
            "legal_rep_id_number": "110101199003070011",
            "legal_rep_changed_12m": False,
            "abnormal_operations": False,
            "industry_code": "C1711",
        },
        "social_security": {"headcount": 30, "headcount_12m_ago": 24},
        "customs": {"export_12m": "0.00", "import_12m": "0.00"},
        "credit_bureau": {
            "current_overdue_amount": "0.00",
            "overdue_count_24m": 2,
            "max_dpd_24m": 15,
            "inquiries_3m": 3,
            "outstanding_debt": "1000000.00",
            "guarantees_outstanding": "0.00",
        },
        "judicial": {
            "dishonest_debtor": False,
            "legal_rep_dishonest_debtor": False,
            "enforcement_cases": 1,
            "litigation_cases_12m": 2,
        },
        "internal": {
            "settlement_inflow_12m": "1800000.00",
            "settlement_inflow_prev_12m": "2000000.00",
            "avg_deposit_balance_6m": "200000.00",
            "npl_5y": False,
            "existing_exposure": "0.00",
        },
    }


def test_feature_names():
    assert set(FEATURES) == EXPECTED_KEYS and len(FEATURES) == 16
    assert CATEGORICAL_FEATURES == ("tax_grade",)
    assert set(NUMERIC_FEATURES) == EXPECTED_KEYS - {"tax_grade"}
    assert set(FEATURE_SOURCES) == EXPECTED_KEYS
    assert all(set(srcs) <= set(SOURCES) for srcs in FEATURE_SOURCES.values())


def test_profile_fields():
    assert [f for f, *_ in PROFILE_FIELDS] and len(PROFILE_FIELDS) == len(FEATURES)
    assert {f for f, *_ in PROFILE_FIELDS} == EXPECTED_KEYS
    for _feature, zh, en, unit in PROFILE_FIELDS:
        assert zh and en
        assert unit in {"years", "cny", "ratio", "count", "grade"}
    units = {f: unit for f, _, _, unit in PROFILE_FIELDS}
    assert units["years_in_business"] == "years"
    assert units["revenue_12m"] == "cny"
    assert units["tax_grade"] == "grade"
    assert units["leverage"] == "ratio"
    assert units["headcount"] == "count"


def test_full_derivation():
    f = derive_features(payloads(), as_of=AS_OF)
    assert set(f) == EXPECTED_KEYS
    assert f["years_in_business"] == pytest.approx(10.0, abs=0.01)
    assert f["revenue_12m"] == 4_000_000.0
    assert f["revenue_growth"] == pytest.approx(0.25)
    assert f["tax_burden"] == pytest.approx(0.03)
    assert f["months_filed"] == 48
    assert f["settlement_inflow_trend"] == pytest.approx(-0.1)
    assert f["headcount"] == 30
    assert f["headcount_trend"] == pytest.approx(0.25)
    assert f["leverage"] == pytest.approx(0.25)
    assert f["overdue_count_24m"] == 2
    assert f["max_dpd_24m"] == 15
    assert f["inquiries_3m"] == 3
    assert f["enforcement_cases"] == 1
    assert f["litigation_cases_12m"] == 2
    assert f["deposit_to_revenue"] == pytest.approx(0.05)
    assert f["tax_grade"] == "B"
    for name in NUMERIC_FEATURES:
        assert type(f[name]) is float, name


def test_all_sources_missing():
    f = derive_features({}, as_of=AS_OF)
    assert f == {key: None for key in EXPECTED_KEYS}
    assert derive_features({s: None for s in SOURCES}, as_of=AS_OF) == f


@pytest.mark.parametrize("missing", SOURCES)
def test_one_source_missing(missing):
    data = payloads()
    data[missing] = None
    f = derive_features(data, as_of=AS_OF)
    assert set(f) == EXPECTED_KEYS
    for feature, sources in FEATURE_SOURCES.items():
        if missing in sources:
            assert f[feature] is None, feature
        else:
            assert f[feature] is not None, feature
    # The same when the key is absent instead of None.
    del data[missing]
    assert derive_features(data, as_of=AS_OF) == f


def test_zero_denominators():
    data = payloads()
    data["tax"]["revenue_12m"] = "0.00"
    data["tax"]["revenue_prev_12m"] = "0.00"
    data["social_security"]["headcount_12m_ago"] = 0
    data["internal"]["settlement_inflow_prev_12m"] = "0.00"
    f = derive_features(data, as_of=AS_OF)
    for feature in (
        "revenue_growth",
        "tax_burden",
        "leverage",
        "deposit_to_revenue",
        "headcount_trend",
        "settlement_inflow_trend",
    ):
        assert f[feature] is None, feature
    assert f["revenue_12m"] == 0.0
    assert f["headcount"] == 30.0


def test_zero_numerators_are_not_missing():
    data = payloads()
    data["credit_bureau"]["outstanding_debt"] = "0.00"
    data["internal"]["settlement_inflow_12m"] = "0.00"
    data["social_security"]["headcount"] = 0
    f = derive_features(data, as_of=AS_OF)
    assert f["leverage"] == 0.0
    assert f["settlement_inflow_trend"] == -1.0
    assert f["headcount_trend"] == -1.0


def test_revenue_growth_zero_prev_only():
    data = payloads()
    data["tax"]["revenue_prev_12m"] = "0.00"
    f = derive_features(data, as_of=AS_OF)
    assert f["revenue_growth"] is None
    assert f["tax_burden"] == pytest.approx(0.03)


def test_years_in_business_edge_cases():
    data = payloads()
    data["registry"]["founded_on"] = "2026-01-01"  # after as_of: clamp
    assert derive_features(data, as_of=AS_OF)["years_in_business"] == 0.0
    data["registry"]["founded_on"] = date(2024, 6, 30)  # date objects work too
    assert derive_features(data, as_of=AS_OF)["years_in_business"] == pytest.approx(1.0, abs=0.01)
    del data["registry"]["founded_on"]
    assert derive_features(data, as_of=AS_OF)["years_in_business"] is None


def test_partial_payload_fields():
    data = payloads()
    del data["credit_bureau"]["inquiries_3m"]
    data["tax"]["tax_grade"] = None
    f = derive_features(data, as_of=AS_OF)
    assert f["inquiries_3m"] is None and f["tax_grade"] is None
    assert f["overdue_count_24m"] == 2


def test_derivation_from_sandbox_payloads():
    provider = SandboxProvider()
    for seed in range(50):
        code = make_uscc(seed)
        data = {s: provider.fetch(s, code, as_of=AS_OF) for s in SOURCES}
        f = derive_features(data, as_of=AS_OF)
        assert set(f) == EXPECTED_KEYS
        assert f["tax_grade"] in {"A", "B", "M", "C", "D"}
        assert 1 <= f["years_in_business"] <= 20.01
        assert 0.0099 < f["tax_burden"] < 0.0601
        for name in NUMERIC_FEATURES:
            assert f[name] is None or isinstance(f[name], float)
