"""Back-testing (analytics.backtest): observed 12-month default rates against the PDs given, the binomial test
and its traffic light, the Gini/AUC of the live model once there are enough defaults, and champion against
challenger on the same outcomes. Synthetic books with known default rates; one real loan for the book reader."""

from __future__ import annotations

import datetime as dt
import math
import random

import numpy as np
import pytest

from analytics.backtest import (
    GREEN,
    INSUFFICIENT,
    RED,
    YELLOW,
    Outcome,
    auc_of,
    binomial_confidence,
    calibration,
    discrimination,
    traffic_light,
)
from underwriting.models import ModelRiskPolicy

POLICY = ModelRiskPolicy(effective_from=dt.date(2026, 1, 1))  # defaults: 95 % / 99.99 %, 20 loans, 20 defaults


def _cdf_below(d, n, p):
    return sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(d))


def test_binomial_confidence_and_the_basel_zones():
    for d in (0, 1, 3, 4, 8):
        assert binomial_confidence(d, 100, 0.01) == pytest.approx(_cdf_below(d, 100, 0.01), abs=1e-9)
    assert traffic_light(1, 100, 0.01, policy=POLICY)[0] == GREEN  # one default where one was expected
    assert traffic_light(4, 100, 0.01, policy=POLICY)[0] == YELLOW  # P(X < 4) ≈ 98.1 %
    assert traffic_light(9, 100, 0.01, policy=POLICY)[0] == RED  # P(X < 9) > 99.99 %
    assert traffic_light(9, 19, 0.01, policy=POLICY) == (INSUFFICIENT, None)
    strict = ModelRiskPolicy(effective_from=dt.date(2026, 1, 1), backtest_yellow="0.99", backtest_red="0.999")
    assert traffic_light(4, 100, 0.01, policy=strict)[0] == GREEN  # the levels are data


def _book(seed=1):
    rng = random.Random(seed)
    out = []
    for grade, pd, true_rate, n in (("A", 0.005, 0.005, 300), ("B", 0.02, 0.02, 600), ("C", 0.04, 0.06, 400),
                                     ("D", 0.05, 0.15, 300), ("E", 0.25, 0.25, 10)):
        for i in range(n):
            out.append(Outcome(grade=grade, pd=pd, disbursed_on=dt.date(2024, 1 + (i % 6), 10),
                               defaulted=rng.random() < true_rate))
    return out


def test_calibration_per_grade_and_vintage():
    rows = {(r["grade"], r["vintage"]): r for r in calibration(_book(), policy=POLICY)}
    assert rows[("B", "all")]["light"] == GREEN and rows[("B", "all")]["loans"] == 600
    assert rows[("D", "all")]["light"] == RED  # 15 % observed where 5 % was given
    assert rows[("D", "all")]["observed_rate"] > 0.1 and rows[("D", "all")]["pd"] == 0.05
    assert rows[("E", "all")]["light"] == INSUFFICIENT  # ten loans
    assert rows[("B", "2024Q1")]["loans"] + rows[("B", "2024Q2")]["loans"] == 600
    assert all(r["light_label"] and "_" not in r["light_label"] for r in rows.values())
    # a correct PD is rarely flagged: over 40 books grade B is never red and yellow at most about 5 % of the time
    lights = [next(r for r in calibration(_book(seed), policy=POLICY) if r["grade"] == "B" and r["vintage"] == "all")["light"]
              for seed in range(40)]
    assert RED not in lights and lights.count(YELLOW) <= 5


def test_auc_matches_the_rank_definition_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    points = rng.integers(500, 520, size=300).tolist()
    bad = (rng.random(300) < 0.3).tolist()
    assert auc_of(points, bad) == pytest.approx(roc_auc_score(bad, [-p for p in points]))
    assert auc_of([1, 2], [False, False]) is None


def test_discrimination_waits_for_enough_defaults_and_compares_champion_and_challenger():
    rng = random.Random(3)
    few = [Outcome(grade="B", pd=0.02, disbursed_on=dt.date(2024, 1, 1), defaulted=i < 5, points=600 - (i < 5) * 50)
           for i in range(200)]
    result = discrimination(few, policy=POLICY)
    assert result["enough"] is False and result["auc"] is None and result["defaults"] == 5
    book = []
    for _i in range(1000):
        quality = rng.gauss(0, 1)
        bad = rng.random() < 1 / (1 + math.exp(2 + 1.5 * quality))
        book.append(Outcome(grade="C", pd=0.04, disbursed_on=dt.date(2024, 1, 1), defaulted=bad,
                            points=int(600 + 40 * quality + rng.gauss(0, 40)),  # a noisy champion
                            challenger_points=int(600 + 40 * quality + rng.gauss(0, 10))))  # a sharper challenger
    result = discrimination(book, policy=POLICY)
    assert result["enough"] and 0.6 < result["auc"] < 0.9 and result["gini"] == pytest.approx(2 * result["auc"] - 1, abs=1e-3)
    cc = result["champion_challenger"]
    assert cc["loans"] == 1000 and cc["challenger_auc"] > cc["champion_auc"] and cc["winner"] == "challenger"


@pytest.mark.django_db
def test_the_book_reader_counts_only_closed_12_month_windows(products, org):
    from analytics.backtest import backtest, book_outcomes
    from analytics.selectors import _add_months
    from tests.factories import FastTrackLoanFactory
    from underwriting.models import Score

    loan = FastTrackLoanFactory(seed=11)  # never repays: 90 days past due from its first due date on
    score = Score.objects.get(application=loan.application, is_shadow=False)
    young, younger = book_outcomes(as_of=_add_months(loan.disbursed_on, 11))
    assert young == [] and younger == 1
    mature, younger = book_outcomes(as_of=_add_months(loan.disbursed_on, 13))
    assert younger == 0 and len(mature) == 1
    assert (mature[0].grade, mature[0].points, mature[0].defaulted) == (score.grade, score.points, True)
    assert mature[0].pd == pytest.approx(float(score.pd))
    result = backtest(as_of=_add_months(loan.disbursed_on, 13), policy=POLICY)
    cell = next(r for r in result["calibration"] if r["grade"] == score.grade and r["vintage"] == "all")
    assert (cell["loans"], cell["defaults"], cell["light"]) == (1, 1, INSUFFICIENT)
