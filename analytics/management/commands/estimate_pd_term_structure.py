"""Estimate the PD term structure from the book's vintages and save it as a new draft version.

    python manage.py estimate_pd_term_structure [--as-of DATE] [--effective-from DATE] [--name NAME] [--json]

The version is in force from its effective date once another person approves it in admin (违约概率期限结构 →
Approve). Method and fallback: docs/analytics.md ("PD term structure").
"""

from __future__ import annotations

import datetime as dt
import json

from django.core.management.base import BaseCommand, CommandError

from analytics.pd_estimation import pd_term_structure_estimate
from loanservice.errors import ApplicationError


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"not a date (YYYY-MM-DD): {value!r}") from exc


class Command(BaseCommand):
    help = "Estimate the PD term structure per grade from the book and save it as a draft version."

    def add_arguments(self, parser):
        parser.add_argument("--as-of", type=_date, default=None, help="data date (default: today)")
        parser.add_argument("--effective-from", type=_date, default=None, help="in force from (default: the day after)")
        parser.add_argument("--name", default="")
        parser.add_argument("--json", action="store_true", help="print one JSON object last")

    def handle(self, *args, as_of, effective_from, name, json: bool = False, **options):
        try:
            structure = pd_term_structure_estimate(as_of=as_of, effective_from=effective_from, name=name)
        except ApplicationError as exc:
            raise CommandError(f"{exc.message} {exc.errors}") from exc
        grades = structure.sample.get("grades", {})
        self.stdout.write(f"PD term structure v{structure.version} (draft), data as of {structure.as_of}, "
                          f"in force from {structure.effective_from} once approved; {structure.sample.get('loans', 0)} loans")
        self.stdout.write(f"{'grade':<6}{'basis':<11}{'loans':>7}{'defaults':>9}{'PD 12m':>9}{'PD 36m':>9}")
        for grade, curve in structure.curves.items():
            g = grades.get(grade, {})
            at36 = curve[min(35, len(curve) - 1)]
            self.stdout.write(f"{grade:<6}{structure.basis[grade]:<11}{g.get('loans', 0):>7}{g.get('defaults', 0):>9}"
                              f"{float(curve[11]):>9.2%}{float(at36):>9.2%}")
        if json:
            self.stdout.write(_json(structure))


def _json(structure) -> str:
    return json.dumps({"version": structure.version, "as_of": structure.as_of.isoformat(),
                       "effective_from": structure.effective_from.isoformat(), "basis": structure.basis,
                       "pd_12m": {g: c[11] for g, c in structure.curves.items()}})
