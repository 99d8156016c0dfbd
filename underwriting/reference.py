"""Reference data of the underwriting stage: the published LPR history (贷款市场报价利率), as data.

Source: the National Interbank Funding Center's monthly announcements (全国银行间同业拆借中心受权公布贷款市场报价利率),
from the reformed LPR's first publication on 2019-08-20. Each row is one publication (the 20th, moved to the next
business day of the official calendar when the 20th is not one, e.g. 2024-10-21, 2021-02-20 a make-up Saturday);
the rates are those in force from that publication. Operations add each month's publication in admin (docs/contracts.md
"Rates"); this seed stops at the last publication the project was sure of. Idempotent (get_or_create): admin edits
made afterwards are never overwritten. Called from casework.reference_data.seed_underwriting.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from .models import LoanPrimeRate

#: Every publication date, 2019-08 to 2025-10 (the 20th or the business day the official calendar moved it to).
PUBLICATIONS = [
    "2019-08-20", "2019-09-20", "2019-10-21", "2019-11-20", "2019-12-20",
    "2020-01-20", "2020-02-20", "2020-03-20", "2020-04-20", "2020-05-20", "2020-06-22",
    "2020-07-20", "2020-08-20", "2020-09-21", "2020-10-20", "2020-11-20", "2020-12-21",
    "2021-01-20", "2021-02-20", "2021-03-22", "2021-04-20", "2021-05-20", "2021-06-21",
    "2021-07-20", "2021-08-20", "2021-09-22", "2021-10-20", "2021-11-22", "2021-12-20",
    "2022-01-20", "2022-02-21", "2022-03-21", "2022-04-20", "2022-05-20", "2022-06-20",
    "2022-07-20", "2022-08-22", "2022-09-20", "2022-10-20", "2022-11-21", "2022-12-20",
    "2023-01-20", "2023-02-20", "2023-03-20", "2023-04-20", "2023-05-22", "2023-06-20",
    "2023-07-20", "2023-08-21", "2023-09-20", "2023-10-20", "2023-11-20", "2023-12-20",
    "2024-01-22", "2024-02-20", "2024-03-20", "2024-04-22", "2024-05-20", "2024-06-20",
    "2024-07-22", "2024-08-20", "2024-09-20", "2024-10-21", "2024-11-20", "2024-12-20",
    "2025-01-20", "2025-02-20", "2025-03-20", "2025-04-21", "2025-05-20", "2025-06-20",
    "2025-07-21", "2025-08-20", "2025-09-22", "2025-10-20",
]

#: The publications that changed a rate: (from, 1-year %, 5-year %); the publications between repeat the last.
CHANGES = [
    ("2019-08-20", "4.25", "4.85"),
    ("2019-09-20", "4.20", "4.85"),
    ("2019-11-20", "4.15", "4.80"),
    ("2020-02-20", "4.05", "4.75"),
    ("2020-04-20", "3.85", "4.65"),
    ("2021-12-20", "3.80", "4.65"),
    ("2022-01-20", "3.70", "4.60"),
    ("2022-05-20", "3.70", "4.45"),
    ("2022-08-22", "3.65", "4.30"),
    ("2023-06-20", "3.55", "4.20"),
    ("2023-08-21", "3.45", "4.20"),
    ("2024-02-20", "3.45", "3.95"),
    ("2024-07-22", "3.35", "3.85"),
    ("2024-10-21", "3.10", "3.60"),
    ("2025-05-20", "3.00", "3.50"),
]


def lpr_history() -> list[tuple[dt.date, str, Decimal]]:
    """(published_on, tenor, rate as a fraction) for every publication of both tenors."""
    rows, changes = [], [(dt.date.fromisoformat(d), Decimal(y1), Decimal(y5)) for d, y1, y5 in CHANGES]
    for text in PUBLICATIONS:
        on = dt.date.fromisoformat(text)
        _from, y1, y5 = [c for c in changes if c[0] <= on][-1]
        rows += [(on, "1y", y1 / 100), (on, "5y", y5 / 100)]
    return rows


def seed_lpr() -> None:
    for on, tenor, rate in lpr_history():
        LoanPrimeRate.objects.get_or_create(tenor=tenor, published_on=on, defaults={"rate": rate})
