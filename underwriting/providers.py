"""Data providers for the seven underwriting sources.

* ``SandboxProvider`` – deterministic synthetic data (demo, tests, development).
* ``HttpProvider``    – JSON over HTTP(S) with timeout, retries with exponential
  backoff and a per-source circuit breaker.

Both return payloads that passed :func:`underwriting.sources.validate_payload`
(i.e. the cleaned, normalised form) or raise :class:`ProviderError`.

Pure Python, stdlib + python-stdnum only.
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import json
import math
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Protocol

from stdnum.cn import ric as _ric
from stdnum.cn import uscc as _uscc
from stdnum.exceptions import ValidationError as _StdnumValidationError

from .sources import (
    ID_NUMBER,
    SOURCES,
    TAX_GRADES,
    FieldSpec,
    clean_value,
    is_valid_industry_code,
    validate_payload,
)

__all__ = [
    "ProviderError",
    "Provider",
    "SandboxProvider",
    "HttpProvider",
    "CircuitBreaker",
    "InMemoryBreakerStore",
    "PROVIDERS",
    "TIERS",
    "TIER_WEIGHTS",
    "sandbox_tier",
    "make_uscc",
    "make_resident_id",
]


# =========================================================================== errors


class ProviderError(Exception):
    """A source could not deliver a usable payload.

    Attributes:
        source: the data source name (``"tax"``, ...).
        reason: short human-readable reason in plain English.
        code:   machine-readable category – ``"unavailable"`` (connection error,
                timeout, 5xx after retries), ``"circuit_open"``, ``"not_found"``
                (404 / unknown enterprise), ``"rejected"`` (other 4xx),
                ``"malformed"`` (not JSON), ``"invalid"`` (schema errors).
        field:  first offending field for ``"invalid"`` answers.
        errors: all field errors for ``"invalid"`` answers.
        status: HTTP status when there was one.
    """

    TRANSIENT_CODES = frozenset({"unavailable", "circuit_open"})

    def __init__(
        self,
        source: str,
        reason: str,
        *,
        code: str = "unavailable",
        field: str | None = None,
        errors: dict[str, list[str]] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason
        self.code = code
        self.field = field
        self.errors = errors or {}
        self.status = status

    @property
    def transient(self) -> bool:
        """True when trying again later may help (worth a Celery retry)."""
        return self.code in self.TRANSIENT_CODES


class Provider(Protocol):
    def fetch(self, source: str, uscc: str, *, as_of: date, hints: dict | None = None) -> dict: ...


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise ValueError(f"unknown data source {source!r}")


# =========================================================================== hashing helpers


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()


def _unit(*parts: str) -> float:
    """Uniform float in [0, 1) from a hash of ``parts``."""
    return int.from_bytes(_digest(*parts)[:8], "big") / 2.0**64


def _rng(*parts: str) -> random.Random:
    return random.Random(int.from_bytes(_digest(*parts), "big"))


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _weighted(rng: random.Random, table: dict[str, float]) -> str:
    return rng.choices(list(table), weights=list(table.values()))[0]


def _clip(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def _money(amount: float | Decimal) -> str:
    value = Decimal(str(amount)) if isinstance(amount, float) else Decimal(amount)
    value = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return str(max(value, Decimal("0.00")))


# =========================================================================== risk tiers

TIERS: tuple[str, ...] = ("prime", "good", "fair", "weak", "bad")
TIER_WEIGHTS: dict[str, float] = {"prime": 0.20, "good": 0.35, "fair": 0.25, "weak": 0.12, "bad": 0.08}


def _norm_uscc(uscc: str) -> str:
    return _uscc.compact(uscc or "")


def sandbox_tier(uscc: str) -> str:
    """Hidden sandbox risk tier of an enterprise (≈ 20/35/25/12/8 %)."""
    u = _unit("sandbox-tier", _norm_uscc(uscc))
    acc = 0.0
    for tier in TIERS:
        acc += TIER_WEIGHTS[tier]
        if u < acc:
            return tier
    return TIERS[-1]


# Per-tier generation parameters. Values are probabilities or distribution
# parameters; they move monotonically from "prime" to "bad".
# fmt: off
_TIER_PARAMS: dict[str, dict[str, Any]] = {
    "prime": dict(
        age_beta=(2.2, 2.6), rev_shift=0.30, declared_bias=0.00, growth=(0.12, 0.10),
        grade={"A": 70, "B": 25, "M": 5, "C": 0, "D": 0}, tax_burden=(0.020, 0.060, 0.040), missed_mu=0.05,
        violation=0.002, status={"active": 1.0, "revoked": 0, "cancelled": 0, "liquidation": 0},
        rep_change=0.03, abnormal=0.003, ss_cov=0.90, hc_shift=0.03,
        debt_prob=0.70, leverage=0.15, overdue_mu=0.05, dpd_mean=4, cur_overdue=0.0,
        inq_mu=0.8, guar_prob=0.20, dishonest=0.0, enf_mu=0.02, lit_mu=0.15,
        inflow_shift=0.03, deposit=(0.06, 0.18), npl=0.0,
    ),
    "good": dict(
        age_beta=(1.8, 2.8), rev_shift=0.15, declared_bias=-0.02, growth=(0.08, 0.14),
        grade={"A": 40, "B": 45, "M": 13, "C": 2, "D": 0}, tax_burden=(0.015, 0.055, 0.032), missed_mu=0.15,
        violation=0.005, status={"active": 1.0, "revoked": 0, "cancelled": 0, "liquidation": 0},
        rep_change=0.06, abnormal=0.01, ss_cov=0.85, hc_shift=0.01,
        debt_prob=0.78, leverage=0.22, overdue_mu=0.20, dpd_mean=7, cur_overdue=0.003,
        inq_mu=1.3, guar_prob=0.25, dishonest=0.001, enf_mu=0.05, lit_mu=0.30,
        inflow_shift=0.0, deposit=(0.04, 0.12), npl=0.002,
    ),
    "fair": dict(
        age_beta=(1.5, 3.0), rev_shift=0.0, declared_bias=-0.05, growth=(0.03, 0.18),
        grade={"A": 15, "B": 45, "M": 28, "C": 10, "D": 2}, tax_burden=(0.012, 0.050, 0.025), missed_mu=0.5,
        violation=0.015, status={"active": 0.995, "revoked": 0.003, "cancelled": 0, "liquidation": 0.002},
        rep_change=0.10, abnormal=0.03, ss_cov=0.78, hc_shift=0.0,
        debt_prob=0.85, leverage=0.32, overdue_mu=0.60, dpd_mean=12, cur_overdue=0.01,
        inq_mu=2.2, guar_prob=0.30, dishonest=0.005, enf_mu=0.15, lit_mu=0.50,
        inflow_shift=-0.03, deposit=(0.02, 0.08), npl=0.005,
    ),
    "weak": dict(
        age_beta=(1.3, 3.2), rev_shift=-0.20, declared_bias=-0.12, growth=(-0.05, 0.20),
        grade={"A": 2, "B": 30, "M": 33, "C": 25, "D": 10}, tax_burden=(0.010, 0.040, 0.018), missed_mu=1.5,
        violation=0.05, status={"active": 0.985, "revoked": 0.008, "cancelled": 0.002, "liquidation": 0.005},
        rep_change=0.15, abnormal=0.08, ss_cov=0.70, hc_shift=-0.03,
        debt_prob=0.90, leverage=0.50, overdue_mu=1.2, dpd_mean=30, cur_overdue=0.04,
        inq_mu=4.0, guar_prob=0.40, dishonest=0.02, enf_mu=0.5, lit_mu=1.0,
        inflow_shift=-0.08, deposit=(0.01, 0.05), npl=0.03,
    ),
    "bad": dict(
        age_beta=(1.2, 3.5), rev_shift=-0.30, declared_bias=-0.20, growth=(-0.15, 0.25),
        grade={"A": 0, "B": 15, "M": 25, "C": 35, "D": 25}, tax_burden=(0.010, 0.030, 0.013), missed_mu=3.0,
        violation=0.15, status={"active": 0.92, "revoked": 0.03, "cancelled": 0.02, "liquidation": 0.03},
        rep_change=0.25, abnormal=0.20, ss_cov=0.60, hc_shift=-0.08,
        debt_prob=0.92, leverage=0.70, overdue_mu=2.5, dpd_mean=60, cur_overdue=0.15,
        inq_mu=6.0, guar_prob=0.45, dishonest=0.12, enf_mu=1.5, lit_mu=2.0,
        inflow_shift=-0.15, deposit=(0.005, 0.03), npl=0.10,
    ),
}
# fmt: on
assert tuple(_TIER_PARAMS) == TIERS and set(_TIER_PARAMS["bad"]["grade"]) == set(TAX_GRADES)

# Typical SME industries (GB/T 4754-2017) with rough weights.
_INDUSTRIES: dict[str, float] = {
    "C1711": 3,  # 棉纺纱加工
    "C1830": 4,  # 服饰制造
    "C2110": 3,  # 木质家具制造
    "C2927": 4,  # 日用塑料制品制造
    "C3311": 4,  # 金属结构制造
    "C3360": 3,  # 金属表面处理及热处理加工
    "C3981": 3,  # 电阻电容电感元件制造
    "C1391": 2,  # 淀粉及淀粉制品制造
    "F5132": 8,  # 服装批发
    "F51": 6,  # 批发业
    "F5212": 5,  # 超级市场零售
    "F52": 5,  # 零售业
    "E4790": 4,  # 其他房屋建筑业
    "E5012": 4,  # 住宅装饰和装修
    "G543": 5,  # 道路货物运输
    "H6210": 5,  # 正餐服务
    "H6110": 2,  # 旅游饭店
    "I6513": 6,  # 应用软件开发
    "A0141": 2,  # 蔬菜种植
    "M75": 3,  # 科技推广和应用服务业
    "L72": 4,  # 商务服务业
}
assert all(is_valid_industry_code(code) for code in _INDUSTRIES)

_CAPITAL_STEPS = (
    100_000,
    300_000,
    500_000,
    1_000_000,
    2_000_000,
    3_000_000,
    5_000_000,
    8_000_000,
    10_000_000,
    20_000_000,
    30_000_000,
    50_000_000,
    100_000_000,
)

_ID_SPEC = FieldSpec(ID_NUMBER, "", "")


# =========================================================================== identifiers

# Region codes (GB/T 2260) currently in use, for USCC digits 3-8.
# fmt: off
_USCC_REGIONS = (
    "110101", "110102", "110105", "110106", "110108", "120101", "120103",
    "310101", "310104", "310105", "310106", "310107", "310110", "310115",
    "320102", "320106", "330102", "330105", "330106", "330108", "350203",
    "370202", "420106", "440103", "440104", "440106", "440304", "440305",
    "440306", "500103", "510104", "510107", "610113",
)
# County codes for resident IDs; validity for the birth year is checked with stdnum.
_RIC_COUNTIES = (
    "110101", "110102", "110105", "110108", "120101", "310104", "310105", "310107",
    "320102", "330102", "330106", "350203", "370202", "420106", "440104", "440106",
    "440305", "500103", "510104", "610113",
)
# fmt: on
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _org_code_check_digit(body: str) -> str:
    """GB 11714 organisation-code check digit for an 8-character body."""
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    total = sum((int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body, weights, strict=True))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def _uscc_candidate(seed: int, attempt: int) -> str:
    rng = _rng("make-uscc", str(seed), str(attempt))
    region = rng.choice(_USCC_REGIONS)
    if rng.random() < 0.65:  # codes issued since 2015: "MA" + 6 characters
        body = "MA" + "".join(rng.choice(_USCC_ALPHABET) for _ in range(6))
    else:  # legacy 8-digit organisation code
        body = "".join(rng.choice("0123456789") for _ in range(8))
    first17 = "91" + region + body + _org_code_check_digit(body)
    # stdnum's calc_check_digit takes the 17 characters *without* the check digit.
    return first17 + _uscc.calc_check_digit(first17)


def make_uscc(seed: int, *, tier: str | None = None) -> str:
    """A valid 18-character USCC, deterministic in ``seed`` (and ``tier``).

    With ``tier`` the candidates for ``seed`` are searched in a fixed order until
    one falls in that sandbox tier.
    """
    if tier is not None and tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; expected one of {', '.join(TIERS)}")
    attempt = 0
    while True:
        code = _uscc_candidate(seed, attempt)
        if tier is None or sandbox_tier(code) == tier:
            return code
        attempt += 1


def _county_valid_for(county: str, birth_year: int) -> bool:
    probe = f"{county}{birth_year:04d}0101000"
    probe += _ric.calc_check_digit(probe + "0")
    try:
        _ric.get_birth_place(probe)
    except _StdnumValidationError:
        return False
    return True


def make_resident_id(seed: int, *, birth_year: int) -> str:
    """A valid 18-digit resident identity card number (``stdnum.cn.ric``)."""
    if not 1900 <= birth_year <= 2099:
        raise ValueError("birth_year must be between 1900 and 2099")
    rng = _rng("make-resident-id", str(seed), str(birth_year))
    counties = list(_RIC_COUNTIES)
    rng.shuffle(counties)
    county = next(c for c in counties if _county_valid_for(c, birth_year))
    start = date(birth_year, 1, 1)
    birth = start + timedelta(days=rng.randrange((date(birth_year + 1, 1, 1) - start).days))
    body = f"{county}{birth:%Y%m%d}{rng.randrange(1, 1000):03d}"
    # stdnum's calc_check_digit expects the full number and ignores its last character.
    return body + _ric.calc_check_digit(body + "0")


# =========================================================================== sandbox


@dataclass(frozen=True)
class _Firm:
    uscc: str
    tier: str
    as_of: date
    founded_on: date
    age_years: float
    revenue: float
    growth: float
    industry_code: str
    employees: int | None
    legal_rep_id_number: str | None


def _hint_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _hint_number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(Decimal(str(value).strip()))
    except (InvalidOperation, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


_uscc_valid = functools.lru_cache(maxsize=4096)(_uscc.is_valid)  # a firm's seven sources check one code
_FIRMS: OrderedDict[tuple, _Firm] = OrderedDict()
_FIRMS_SIZE = 512
_firms_lock = threading.Lock()


def _firm(uscc: str, as_of: date, hints: dict | None) -> _Firm:
    """The synthetic firm behind a USCC on a date, derived once for all its sources: a submission pulls seven
    sources of one firm in a row, and the nightly refresh several (deterministic, so a per-process memo of the last
    few hundred firms changes no payload)."""
    key = (uscc, as_of, tuple(sorted((k, repr(v)) for k, v in (hints or {}).items())))
    with _firms_lock:
        firm = _FIRMS.get(key)
        if firm is not None:
            _FIRMS.move_to_end(key)
            return firm
    firm = _derive_firm(uscc, as_of, hints)
    with _firms_lock:
        _FIRMS[key] = firm
        while len(_FIRMS) > _FIRMS_SIZE:
            _FIRMS.popitem(last=False)
    return firm


def _derive_firm(uscc: str, as_of: date, hints: dict | None) -> _Firm:
    hints = hints or {}
    tier = sandbox_tier(uscc)
    p = _TIER_PARAMS[tier]
    rng = _rng("sandbox-firm", uscc)
    # Draw every random number unconditionally so that hints never shift the others.
    age_years = 1.0 + 19.0 * rng.betavariate(*p["age_beta"])
    size_z = rng.gauss(0.0, 1.0)
    declared_noise = rng.gauss(p["declared_bias"], 0.08)
    growth = rng.gauss(*p["growth"])
    industry = _weighted(rng, _INDUSTRIES)

    founded_on = as_of - timedelta(days=int(age_years * 365.25))
    hinted_founded = _hint_date(hints.get("founded_on"))
    if hinted_founded is not None and date(1900, 1, 1) <= hinted_founded <= as_of:
        founded_on = hinted_founded
        age_years = (as_of - founded_on).days / 365.25

    annual_revenue = _hint_number(hints.get("annual_revenue"))
    if annual_revenue is not None:
        # Tax-reported revenue tracks what the applicant declared; weaker firms overstate.
        revenue = _clip(annual_revenue * math.exp(declared_noise), 0.0, 1e12)
    else:
        revenue = _clip(math.exp(15.6 + p["rev_shift"] + 0.95 * size_z), 300_000, 300_000_000)

    if age_years < 2:
        growth += 0.20  # young firms grow fast
    growth = _clip(growth, -0.6, 1.5)

    hinted_industry = hints.get("industry_code")
    if is_valid_industry_code(hinted_industry):
        industry = hinted_industry.strip().upper()

    employees = _hint_number(hints.get("employees"))
    rep_id = None
    if hints.get("legal_rep_id_number"):
        try:
            rep_id = clean_value(_ID_SPEC, hints["legal_rep_id_number"])
        except ValueError:
            rep_id = None

    return _Firm(
        uscc=uscc,
        tier=tier,
        as_of=as_of,
        founded_on=founded_on,
        age_years=age_years,
        revenue=revenue,
        growth=growth,
        industry_code=industry,
        employees=int(employees) if employees is not None else None,
        legal_rep_id_number=rep_id,
    )


def _gen_tax(f: _Firm, rng: random.Random, p: dict) -> dict:
    graded = _weighted(rng, p["grade"])
    new_taxpayer = rng.random() < 0.8
    grade = "M" if f.age_years < 1.5 and new_taxpayer and graded not in ("C", "D") else graded
    age_months = int(f.age_years * 12)
    gap = rng.randint(0, 3)
    months_filed = max(0, min(60, age_months - gap) - _poisson(rng, p["missed_mu"]))
    burden = rng.triangular(*p["tax_burden"])  # (low, high, mode), within 1-6 %
    violation = rng.random() < (0.5 if grade == "D" else p["violation"])
    return {
        "tax_grade": grade,
        "months_filed": months_filed,
        "tax_paid_12m": _money(f.revenue * burden),
        "revenue_12m": _money(f.revenue),
        "revenue_prev_12m": _money(f.revenue / (1.0 + f.growth)),
        "major_violation": violation,
    }


def _gen_registry(f: _Firm, rng: random.Random, p: dict) -> dict:
    status = _weighted(rng, p["status"])
    raw_capital = f.revenue * math.exp(rng.gauss(-1.5, 0.8))
    capital = min(_CAPITAL_STEPS, key=lambda step: abs(math.log(step / raw_capital)))
    rep_seed = rng.getrandbits(32)
    rep_birth_year = 1960 + rng.randint(0, 35)
    rep_changed = rng.random() < p["rep_change"]
    abnormal = rng.random() < (0.6 if status != "active" else p["abnormal"])
    return {
        "status": status,
        "founded_on": f.founded_on.isoformat(),
        "registered_capital": _money(capital),
        "legal_rep_id_number": f.legal_rep_id_number or make_resident_id(rep_seed, birth_year=rep_birth_year),
        "legal_rep_changed_12m": rep_changed,
        "abnormal_operations": abnormal,
        "industry_code": f.industry_code,
    }


def _gen_social_security(f: _Firm, rng: random.Random, p: dict) -> dict:
    coverage = rng.uniform(p["ss_cov"], 1.0)
    revenue_per_head = math.exp(rng.gauss(math.log(300_000), 0.5))
    trend = _clip(0.5 * f.growth + p["hc_shift"] + rng.gauss(0.0, 0.08), -0.6, 1.0)
    if f.employees is not None:
        headcount = max(1, round(f.employees * coverage))
    else:
        headcount = int(_clip(round(f.revenue / revenue_per_head), 5, 200))
    return {"headcount": headcount, "headcount_12m_ago": max(1, round(headcount / (1.0 + trend)))}


def _gen_customs(f: _Firm, rng: random.Random, p: dict) -> dict:
    section = f.industry_code[0]
    export_p, import_p = {"C": (0.35, 0.20), "F": (0.20, 0.15)}.get(section, (0.04, 0.03))
    exports = f.revenue * rng.uniform(0.10, 0.70) if rng.random() < export_p else 0.0
    imports = f.revenue * rng.uniform(0.05, 0.40) if rng.random() < import_p else 0.0
    return {"export_12m": _money(exports), "import_12m": _money(imports)}


def _gen_credit_bureau(f: _Firm, rng: random.Random, p: dict) -> dict:
    has_debt = rng.random() < p["debt_prob"]
    leverage = math.exp(rng.gauss(math.log(p["leverage"]), 0.5))
    debt = f.revenue * leverage if has_debt else 0.0
    overdue_count = _poisson(rng, p["overdue_mu"])
    dpd = int(min(360, 1 + rng.expovariate(1.0 / p["dpd_mean"])))
    max_dpd = dpd if overdue_count else 0
    current_overdue = 0.0
    overdue_now = rng.random() < p["cur_overdue"]
    overdue_share = rng.uniform(0.02, 0.30)
    if overdue_now and debt > 0:
        current_overdue = debt * overdue_share
        overdue_count = max(overdue_count, 1)
        max_dpd = max(max_dpd, dpd)
    guarantees = f.revenue * rng.uniform(0.05, 0.50) if rng.random() < p["guar_prob"] else 0.0
    return {
        "current_overdue_amount": _money(current_overdue),
        "overdue_count_24m": overdue_count,
        "max_dpd_24m": max_dpd,
        "inquiries_3m": min(10, _poisson(rng, p["inq_mu"])),
        "outstanding_debt": _money(debt),
        "guarantees_outstanding": _money(guarantees),
    }


def _gen_judicial(f: _Firm, rng: random.Random, p: dict) -> dict:
    dishonest = rng.random() < p["dishonest"]
    rep_dishonest = rng.random() < (0.5 if dishonest else p["dishonest"] / 2)
    enforcement = _poisson(rng, p["enf_mu"])
    if dishonest:
        enforcement += 1
    return {
        "dishonest_debtor": dishonest,
        "legal_rep_dishonest_debtor": rep_dishonest,
        "enforcement_cases": enforcement,
        "litigation_cases_12m": _poisson(rng, p["lit_mu"]),
    }


def _gen_internal(f: _Firm, rng: random.Random, p: dict) -> dict:
    relationship = rng.random() < 0.75
    share = rng.uniform(0.15, 0.80)
    drift = math.exp(p["inflow_shift"] + rng.gauss(0.0, 0.10))
    deposit_ratio = rng.uniform(*p["deposit"])
    npl = rng.random() < p["npl"]
    has_exposure = rng.random() < 0.30
    exposure_ratio = rng.uniform(0.05, 0.20)
    if not relationship:
        return {
            "settlement_inflow_12m": "0.00",
            "settlement_inflow_prev_12m": "0.00",
            "avg_deposit_balance_6m": "0.00",
            "npl_5y": False,
            "existing_exposure": "0.00",
        }
    inflow = f.revenue * share * drift
    return {
        "settlement_inflow_12m": _money(inflow),
        "settlement_inflow_prev_12m": _money(f.revenue / (1.0 + f.growth) * share),
        "avg_deposit_balance_6m": _money(inflow * deposit_ratio),
        "npl_5y": npl,
        "existing_exposure": _money(f.revenue * exposure_ratio if has_exposure else 0.0),
    }


_GENERATORS: dict[str, Callable[[_Firm, random.Random, dict], dict]] = {
    "tax": _gen_tax,
    "registry": _gen_registry,
    "social_security": _gen_social_security,
    "customs": _gen_customs,
    "credit_bureau": _gen_credit_bureau,
    "judicial": _gen_judicial,
    "internal": _gen_internal,
}
assert tuple(_GENERATORS) == SOURCES


class SandboxProvider:
    """Deterministic synthetic data for Chinese small and micro enterprises.

    The same ``(source, uscc, as_of, hints)`` always yields the same payload.  A
    hidden risk tier per USCC (:func:`sandbox_tier`) drives correlated values
    across all sources; firm-level facts (revenue, growth, founding date,
    industry) are shared so that e.g. tax revenue and bank inflows agree.

    ``unavailable`` lists sources that always fail with ``ProviderError`` – handy
    to demo or test partial data.
    """

    name = "sandbox"

    def __init__(self, *, unavailable: Iterable[str] = ()) -> None:
        self.unavailable = frozenset(unavailable)
        for source in self.unavailable:
            _check_source(source)

    def fetch(self, source: str, uscc: str, *, as_of: date, hints: dict | None = None) -> dict:
        _check_source(source)
        code = _norm_uscc(uscc)
        if not _uscc_valid(code):
            raise ProviderError(source, "not a valid unified social credit code", code="rejected")
        if source in self.unavailable:
            raise ProviderError(source, "sandbox source switched off", code="unavailable")
        firm = _firm(code, as_of, hints)
        raw = _GENERATORS[source](firm, _rng("sandbox", code, source), _TIER_PARAMS[firm.tier])
        cleaned, errors = validate_payload(source, raw)
        if errors:  # pragma: no cover - a generator bug
            raise AssertionError(f"sandbox produced an invalid {source} payload: {errors}")
        return cleaned


# =========================================================================== circuit breaker

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


@dataclass
class _BreakerState:
    state: str = CLOSED
    failures: int = 0
    opened_at: float = 0.0
    trial_started_at: float | None = None


class InMemoryBreakerStore:
    """Default state store: a dict.  Any object with ``get(key) -> dict | None``
    and ``set(key, dict)`` can replace it (e.g. a Redis hash; use a wall clock
    such as ``time.time`` then, since monotonic clocks are per process)."""

    def __init__(self) -> None:
        self._data: dict[str, dict] = {}

    def get(self, key: str) -> dict | None:
        return self._data.get(key)

    def set(self, key: str, value: dict) -> None:
        self._data[key] = value


class CircuitBreaker:
    """Consecutive-failure circuit breaker, keyed (one circuit per source).

    * closed: calls pass; ``failure_threshold`` consecutive failures open it.
    * open: calls are refused until ``reset_after`` seconds have passed.
    * half-open: a single trial call passes; success closes the circuit,
      failure opens it again for another ``reset_after``.

    Thread-safe within a process.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_after: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        state_store: Any | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if reset_after < 0:
            raise ValueError("reset_after must not be negative")
        self.failure_threshold = failure_threshold
        self.reset_after = reset_after
        self.clock = clock
        self.store = state_store if state_store is not None else InMemoryBreakerStore()
        self._lock = threading.RLock()

    # -- state persistence
    def _load(self, key: str) -> _BreakerState:
        raw = self.store.get(key)
        return _BreakerState(**raw) if raw else _BreakerState()

    def _save(self, key: str, st: _BreakerState) -> None:
        self.store.set(key, asdict(st))

    # -- public API
    def allow(self, key: str) -> bool:
        """May a call for ``key`` go ahead now?  Reserves the half-open trial."""
        with self._lock:
            st = self._load(key)
            now = self.clock()
            if st.state == CLOSED:
                return True
            if st.state == OPEN:
                if now - st.opened_at < self.reset_after:
                    return False
                st.state = HALF_OPEN
                st.trial_started_at = now
                self._save(key, st)
                return True
            # half-open: one trial at a time; a trial that never reported back expires.
            if st.trial_started_at is not None and now - st.trial_started_at < self.reset_after:
                return False
            st.trial_started_at = now
            self._save(key, st)
            return True

    def record_success(self, key: str) -> None:
        with self._lock:
            self._save(key, _BreakerState())

    def record_failure(self, key: str) -> None:
        with self._lock:
            st = self._load(key)
            now = self.clock()
            if st.state == HALF_OPEN:
                st = _BreakerState(state=OPEN, failures=st.failures + 1, opened_at=now)
            elif st.state == OPEN:
                st.failures += 1
            else:
                st.failures += 1
                if st.failures >= self.failure_threshold:
                    st.state, st.opened_at = OPEN, now
            self._save(key, st)

    def state(self, key: str) -> str:
        """``"closed"``, ``"open"`` or ``"half_open"`` (open and due for a trial)."""
        with self._lock:
            st = self._load(key)
            if st.state == OPEN and self.clock() - st.opened_at >= self.reset_after:
                return HALF_OPEN
            return st.state

    def retry_after(self, key: str) -> float:
        """Seconds until the circuit for ``key`` lets a trial call through (0 if closed)."""
        with self._lock:
            st = self._load(key)
            if st.state != OPEN:
                return 0.0
            return max(0.0, self.reset_after - (self.clock() - st.opened_at))

    def reset(self, key: str) -> None:
        self.record_success(key)


# =========================================================================== HTTP provider

_FAILURE_CODES = frozenset({"unavailable", "malformed", "invalid"})


class HttpProvider:
    """``GET {base_url}/{source}/{uscc}?as_of=YYYY-MM-DD`` returning the payload as a JSON object.

    * ``timeout`` – seconds per attempt (socket connect/read timeout).
    * ``retries`` – extra attempts after connection errors, timeouts and 5xx
      (never after 4xx, malformed JSON or schema errors); the wait before retry
      *n* is ``backoff * 2 ** (n - 1)``.
    * ``breaker`` – a :class:`CircuitBreaker` shared across calls; keyed by
      source.  Defaults to a private one (share one per process for effect).
    * ``sleep``/``opener`` – injectable for tests.

    ``hints`` are accepted for interface compatibility and not sent (no personal
    data in URLs).
    """

    name = "http"
    max_response_bytes = 1_000_000

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 3.0,
        retries: int = 2,
        backoff: float = 0.2,
        breaker: CircuitBreaker | None = None,
        headers: dict[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        opener: Callable[..., Any] | None = None,
    ) -> None:
        if not base_url:
            raise ValueError("base_url is required")
        if retries < 0:
            raise ValueError("retries must not be negative")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.breaker = breaker if breaker is not None else CircuitBreaker()
        self.headers = {
            "Accept": "application/json",
            "User-Agent": "loanservice-underwriting/1",
            **(headers or {}),
        }
        self._sleep = sleep
        self._open = opener or urllib.request.urlopen

    def url_for(self, source: str, uscc: str, as_of: date) -> str:
        query = urllib.parse.urlencode({"as_of": as_of.isoformat()})
        return f"{self.base_url}/{urllib.parse.quote(source)}/{urllib.parse.quote(uscc, safe='')}?{query}"

    def fetch(self, source: str, uscc: str, *, as_of: date, hints: dict | None = None) -> dict:
        _check_source(source)
        if not self.breaker.allow(source):
            wait = self.breaker.retry_after(source)
            raise ProviderError(
                source, f"temporarily unavailable (circuit open, retry in {wait:.0f} s)", code="circuit_open"
            )
        try:
            data = self._get_json(source, self.url_for(source, uscc, as_of))
            cleaned, errors = validate_payload(source, data)
            if errors:
                field = next(iter(errors))
                raise ProviderError(
                    source,
                    f"invalid answer: {field}: {errors[field][0]}",
                    code="invalid",
                    field=field,
                    errors=errors,
                )
        except ProviderError as exc:
            if exc.code in _FAILURE_CODES:
                self.breaker.record_failure(source)
            else:  # the service answered (e.g. 404): it is healthy
                self.breaker.record_success(source)
            raise
        except BaseException:
            self.breaker.record_failure(source)
            raise
        self.breaker.record_success(source)
        return cleaned

    def _get_json(self, source: str, url: str) -> Any:
        attempts = self.retries + 1
        last_reason = "no attempt made"
        for attempt in range(attempts):
            if attempt:
                self._sleep(self.backoff * 2 ** (attempt - 1))
            request = urllib.request.Request(url, headers=self.headers, method="GET")
            try:
                with self._open(request, timeout=self.timeout) as response:
                    body = response.read(self.max_response_bytes + 1)
            except urllib.error.HTTPError as exc:
                status = exc.code
                exc.close()
                if status >= 500:
                    last_reason = f"server error (HTTP {status})"
                    continue
                if status == 404:
                    raise ProviderError(
                        source, "no record for this enterprise", code="not_found", status=status
                    ) from None
                raise ProviderError(
                    source, f"request rejected (HTTP {status})", code="rejected", status=status
                ) from None
            except TimeoutError:
                last_reason = "timed out"
                continue
            except urllib.error.URLError as exc:
                last_reason = (
                    "timed out"
                    if isinstance(exc.reason, TimeoutError)
                    else f"connection failed ({exc.reason})"
                )
                continue
            except (http.client.HTTPException, OSError) as exc:
                last_reason = f"connection failed ({exc.__class__.__name__})"
                continue
            if len(body) > self.max_response_bytes:
                raise ProviderError(source, "answer too large", code="malformed")
            try:
                return json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise ProviderError(source, "malformed answer (not JSON)", code="malformed") from None
        raise ProviderError(
            source, f"unavailable after {attempts} attempt(s): {last_reason}", code="unavailable"
        )


PROVIDERS: dict[str, type] = {"sandbox": SandboxProvider, "http": HttpProvider}
