"""The PD term structure: `underwriting.pd` (12-month and lifetime PD per grade, the version in force, the
forward-looking factor, the scorecard fallback) and its estimator from the book's vintages
(`analytics.pd_estimation`), tested on synthetic books whose true monthly hazards are known."""

from __future__ import annotations

import datetime as dt
import io
import random
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 6, 30)
EXPERT_PD = {"A": 0.005, "B": 0.015, "C": 0.04, "D": 0.10, "E": 0.25}  # docs/scorecard.md, the expert table


def _user(name):
    return get_user_model().objects.create_user(username=name, password="x")


def _lifetime(p12: float, months: int, factor: float = 1.0) -> float:
    h = 1 - (1 - p12) ** (1 / 12)
    return 1 - (1 - min(1.0, h * factor)) ** months


def _structure(curves, *, basis=None, effective_from=DAY, approve=True):
    from underwriting.services import pd_term_structure_approve, pd_term_structure_create

    maker, checker = _user(f"maker{random.random()}"), _user(f"checker{random.random()}")
    s = pd_term_structure_create(name="test", effective_from=effective_from, as_of=effective_from, curves=curves,
                                 basis=basis or {g: "book" for g in curves}, by=maker)
    return pd_term_structure_approve(structure=s, by=checker) if approve else s


def _flat_curves(pd12: dict[str, float], horizon=24):
    return {g: [f"{_lifetime(p, m):.6f}" for m in range(1, horizon + 1)] for g, p in pd12.items()}


# ---------------------------------------------------------------- underwriting.pd
def test_without_a_version_the_scorecard_calibration_is_the_pd():
    from underwriting.pd import pd_12m, pd_lifetime

    for grade, p in EXPERT_PD.items():
        assert pd_12m(grade, on=DAY) == Decimal(f"{p:.6f}")
        assert abs(float(pd_lifetime(grade, months=36, on=DAY)) - _lifetime(p, 36)) < 2e-6
    assert pd_lifetime("B", months=0, on=DAY) == Decimal("0")
    assert pd_12m("", on=DAY) == pd_12m("E", on=DAY)  # a loan without a grade: the worst grade's PD
    assert pd_12m("b", on=DAY) == pd_12m("B", on=DAY)
    assert isinstance(pd_12m("A", on=DAY), Decimal)
    with pytest.raises(ValueError):
        pd_lifetime("A", months=-1, on=DAY)


def test_the_champions_grade_pds_are_the_fallback():
    from underwriting.expert_scorecard import expert_spec
    from underwriting.models import ScorecardModel
    from underwriting.pd import pd_12m

    spec = expert_spec()
    for g in spec["grades"]:
        g["pd"] = {"A": "0.01", "B": "0.02", "C": "0.05", "D": "0.12", "E": "0.30"}[g["grade"]]
    ScorecardModel.objects.create(name="calibrated", spec=spec, is_active=True)
    assert pd_12m("C", on=DAY) == Decimal("0.050000")


def test_the_forward_looking_factor_in_force_scales_the_monthly_hazards():
    from underwriting.models import ModelRiskPolicy
    from underwriting.pd import pd_12m, pd_lifetime

    ModelRiskPolicy.objects.create(effective_from=DAY, forward_looking_factor=Decimal("1.5"))
    before = DAY - dt.timedelta(days=1)
    assert pd_12m("C", on=before) == Decimal("0.040000")
    assert abs(float(pd_12m("C", on=DAY)) - _lifetime(0.04, 12, 1.5)) < 2e-6
    assert float(pd_12m("C", on=DAY)) > 0.04 * 1.45
    assert abs(float(pd_lifetime("D", months=48, on=DAY)) - _lifetime(0.10, 48, 1.5)) < 2e-6
    ModelRiskPolicy.objects.create(effective_from=DAY + dt.timedelta(days=30), forward_looking_factor=Decimal("0.8"))
    assert float(pd_12m("C", on=DAY + dt.timedelta(days=30))) < 0.04


def test_an_approved_version_is_in_force_from_its_date_and_a_draft_never():
    from underwriting.pd import pd_12m, pd_lifetime

    book = {"A": 0.002, "B": 0.01, "C": 0.03, "D": 0.08, "E": 0.2}
    _structure(_flat_curves(book), effective_from=DAY, approve=False)
    assert pd_12m("A", on=DAY) == Decimal("0.005000")  # a draft is not in force
    _structure(_flat_curves(book), effective_from=DAY)
    assert pd_12m("A", on=DAY - dt.timedelta(days=1)) == Decimal("0.005000")
    assert pd_12m("A", on=DAY) == Decimal("0.002000")
    # beyond the version's 24 months the last month's hazard carries on
    assert abs(float(pd_lifetime("D", months=60, on=DAY)) - _lifetime(0.08, 60)) < 3e-5
    later = {g: p * 2 for g, p in book.items()}
    _structure(_flat_curves(later), effective_from=DAY + dt.timedelta(days=90))
    assert pd_12m("B", on=DAY + dt.timedelta(days=89)) == Decimal("0.010000")
    assert pd_12m("B", on=DAY + dt.timedelta(days=90)) == Decimal("0.020000")


def test_four_eyes_and_a_valid_curve():
    from loanservice.errors import ApplicationError, Conflict
    from underwriting.services import pd_term_structure_approve, pd_term_structure_create

    maker = _user("maker")
    curves = _flat_curves(EXPERT_PD, horizon=12)
    s = pd_term_structure_create(name="x", effective_from=DAY, as_of=DAY, curves=curves, basis={g: "book" for g in curves}, by=maker)
    with pytest.raises(ApplicationError):
        pd_term_structure_approve(structure=s, by=maker)
    pd_term_structure_approve(structure=s, by=_user("checker"))
    with pytest.raises(Conflict):
        pd_term_structure_approve(structure=s, by=_user("third"))
    falling = {**curves, "C": list(reversed(curves["C"]))}
    with pytest.raises(ApplicationError) as bad:
        pd_term_structure_create(name="y", effective_from=DAY, as_of=DAY, curves=falling, basis={g: "book" for g in curves})
    assert "curves" in bad.value.errors
    from loanservice.models import AuditEvent

    assert AuditEvent.objects.filter(action="pd_term_structure.approve", object_id=str(s.pk)).count() == 1


# ---------------------------------------------------------------- the estimator on a synthetic book
TRUE_HAZARD = {"A": 0.0002, "B": 0.0030, "C": 0.0070, "D": 0.0150, "E": 0.0400}


def synthetic_book(*, loans_per_grade: dict[str, int], seed=7, as_of=DAY, months_of_origination=36):
    """Loans originated over 36 months, each month on book a default with the grade's true hazard."""
    from analytics.pd_estimation import LoanObservation
    from analytics.selectors import _add_months

    rng = random.Random(seed)
    out = []
    for grade, n in loans_per_grade.items():
        for _i in range(n):
            disbursed = _add_months(as_of, -rng.randint(1, months_of_origination))
            default_on = None
            m = 1
            while _add_months(disbursed, m) <= as_of:
                if rng.random() < TRUE_HAZARD[grade]:
                    default_on = _add_months(disbursed, m - 1) + dt.timedelta(days=10)
                    break
                m += 1
            out.append(LoanObservation(grade=grade, disbursed_on=disbursed, observed_until=as_of, default_on=default_on))
    return out


def _policy(**kw):
    from underwriting.models import ModelRiskPolicy

    return ModelRiskPolicy(effective_from=DAY, **kw)


def test_the_estimator_recovers_the_true_pds_of_a_thick_book():
    from analytics.pd_estimation import estimate_term_structure

    book = synthetic_book(loans_per_grade={g: 3000 for g in TRUE_HAZARD})
    result = estimate_term_structure(book, policy=_policy(pd_prior_months=600), prior_pd_12m=EXPERT_PD)
    for grade, h in TRUE_HAZARD.items():
        true_12 = 1 - (1 - h) ** 12
        got = float(result["curves"][grade][11])
        assert result["basis"][grade] == "book"
        assert abs(got - true_12) < max(0.25 * true_12, 0.003), (grade, got, true_12)
        # and not the scorecard's prior, which is half or double the truth
        assert abs(got - true_12) < abs(got - EXPERT_PD[grade])
    pd12 = [float(result["curves"][g][11]) for g in "ABCDE"]
    assert pd12 == sorted(pd12)
    for g in "ABCDE":
        curve = [float(c) for c in result["curves"][g]]
        assert curve == sorted(curve) and len(curve) == 60


def test_a_thin_grade_falls_back_to_the_scorecard_and_order_holds():
    from analytics.pd_estimation import estimate_term_structure
    from underwriting.pd import scorecard_curve

    book = synthetic_book(loans_per_grade={"A": 30, "B": 3000, "C": 3000, "D": 3000, "E": 40})
    result = estimate_term_structure(book, policy=_policy(pd_min_loans=100, pd_min_defaults=5), prior_pd_12m=EXPERT_PD)
    assert result["basis"] == {"A": "scorecard", "B": "book", "C": "book", "D": "book", "E": "scorecard"}
    assert result["curves"]["A"] == [f"{c:.6f}" for c in scorecard_curve(0.005, 60)]
    assert result["sample"]["grades"]["A"]["loans"] == 30
    for m in range(60):
        col = [float(result["curves"][g][m]) for g in "ABCDE"]
        assert col == sorted(col)
    # a grade with loans but too few defaults is thin too
    few = estimate_term_structure(book, policy=_policy(pd_min_loans=10, pd_min_defaults=10_000), prior_pd_12m=EXPERT_PD)
    assert set(few["basis"].values()) == {"scorecard"}


def test_smoothing_pulls_an_unseen_horizon_towards_the_scorecard():
    from analytics.pd_estimation import estimate_term_structure

    # loans only 1 to 6 months old: months on book 7+ have no exposure and follow the scorecard's hazard
    book = synthetic_book(loans_per_grade={g: 4000 for g in TRUE_HAZARD}, months_of_origination=6)
    result = estimate_term_structure(book, policy=_policy(pd_min_defaults=1), prior_pd_12m=EXPERT_PD)
    bands = result["sample"]["grades"]["C"]["bands"]
    assert bands[0]["loan_months"] > 0 and bands[2]["loan_months"] == 0
    h0 = 1 - (1 - EXPERT_PD["C"]) ** (1 / 12)
    assert bands[2]["hazard"] == pytest.approx(h0, rel=1e-6)


def test_months_on_book_and_default_month():
    from analytics.pd_estimation import LoanObservation, default_month, months_between

    assert months_between(dt.date(2026, 1, 31), dt.date(2026, 2, 28)) == 1
    assert months_between(dt.date(2026, 1, 15), dt.date(2026, 2, 14)) == 0
    assert months_between(dt.date(2026, 1, 15), dt.date(2026, 2, 15)) == 1
    obs = LoanObservation(grade="B", disbursed_on=dt.date(2026, 1, 15), observed_until=DAY, default_on=dt.date(2026, 2, 15))
    assert default_month(obs) == 1
    assert default_month(LoanObservation(grade="B", disbursed_on=dt.date(2026, 1, 15), observed_until=DAY,
                                         default_on=dt.date(2026, 2, 16))) == 2


# ---------------------------------------------------------------- the book itself
def test_the_book_reader_finds_grade_and_the_90_dpd_day(products, org):
    from analytics.pd_estimation import book_observations
    from tests.factories import FastTrackLoanFactory
    from underwriting.models import Score

    loan = FastTrackLoanFactory(seed=11)
    grade = Score.objects.get(application=loan.application, is_shadow=False).grade
    first_due = loan.installments.order_by("n").first().due_date
    before = book_observations(as_of=first_due + dt.timedelta(days=89))
    assert [(o.grade, o.disbursed_on, o.default_on) for o in before] == [(grade, loan.disbursed_on, None)]
    after = book_observations(as_of=first_due + dt.timedelta(days=120))
    assert after[0].default_on == first_due + dt.timedelta(days=90)
    assert book_observations(as_of=loan.disbursed_on - dt.timedelta(days=1)) == []


def test_the_command_saves_a_draft_version_and_pd_uses_it_once_approved(products, org):
    from tests.factories import FastTrackLoanFactory
    from underwriting.models import PDTermStructure
    from underwriting.pd import pd_12m
    from underwriting.services import pd_term_structure_approve

    FastTrackLoanFactory(seed=11)
    out = io.StringIO()
    call_command("estimate_pd_term_structure", "--as-of", DAY.isoformat(), "--json", stdout=out)
    structure = PDTermStructure.objects.get()
    assert structure.approved_at is None and structure.effective_from == DAY + dt.timedelta(days=1)
    assert set(structure.basis.values()) == {"scorecard"}  # one loan is a thin book
    assert f'"version": {structure.version}' in out.getvalue().splitlines()[-1]
    pd_term_structure_approve(structure=structure, by=org["demo_risk"])
    assert pd_12m("B", on=DAY + dt.timedelta(days=1)) == Decimal(structure.curves["B"][11])


def test_the_policy_refuses_thresholds_out_of_order():
    from django.core.exceptions import ValidationError

    from underwriting.models import ModelRiskPolicy

    with pytest.raises(ValidationError) as bad:
        ModelRiskPolicy(effective_from=DAY, drift_watch=Decimal("0.3"), drift_shift=Decimal("0.2")).full_clean()
    assert "drift_shift" in bad.value.message_dict
    with pytest.raises(ValidationError) as bad:
        ModelRiskPolicy(effective_from=DAY, backtest_yellow=Decimal("0.9999"), backtest_red=Decimal("0.95")).full_clean()
    assert "backtest_red" in bad.value.message_dict
    ModelRiskPolicy(effective_from=DAY).full_clean()
