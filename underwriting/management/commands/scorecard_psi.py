"""Population stability of a scorecard: recent scores against the model's development sample.

    python manage.py scorecard_psi [--model VERSION] [--days 90] [--baseline-sandbox N] [--json]

Per feature (over the model's own bins, missing and other included), for the score (over ten quantile bins of
the development points) and for the grade mix: PSI < 0.1 stable, < 0.25 watch, otherwise shift. The recent
sample is every score the model gave in the last ``--days`` days, as champion or in shadow as challenger.

A trained model carries its development summary (``train_scorecard --save``). The expert card has no training
sample: ``--baseline-sandbox N`` stores one drawn from N enterprises of the sandbox population, the
portfolio the bank expects (audited; say so in the model review).
"""

from __future__ import annotations

import datetime as dt
import json
import math

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from underwriting.features import FEATURES, derive_features
from underwriting.providers import SandboxProvider, make_uscc
from underwriting.scorecard import development_summary, psi_against_summary
from underwriting.selectors import scorecard_model, scorecard_recent_columns
from underwriting.services import scorecard_development_set
from underwriting.sources import SOURCES


def sandbox_columns(n: int, *, as_of: dt.date) -> dict[str, list]:
    """Derived features of N deterministic sandbox enterprises (tiers in their portfolio shares)."""

    provider = SandboxProvider()
    columns: dict[str, list] = {f: [] for f in FEATURES}
    for i in range(n):
        uscc = make_uscc(900_000 + i)
        features = derive_features({s: provider.fetch(s, uscc, as_of=as_of) for s in SOURCES}, as_of=as_of)
        for name in FEATURES:
            columns[name].append(features[name])
    return columns


class Command(BaseCommand):
    help = "PSI of a scorecard's recent scores against its development sample, per feature and for the score."

    def add_arguments(self, parser):
        parser.add_argument("--model", type=int, default=None, help="model version (default: the champion)")
        parser.add_argument("--days", type=int, default=90, help="recent window in days (default 90)")
        parser.add_argument("--baseline-sandbox", type=int, default=0, metavar="N",
                            help="first store a development summary drawn from N sandbox enterprises")
        parser.add_argument("--json", action="store_true", help="end with one line of JSON")

    def handle(self, *args, **opts):
        model = scorecard_model(opts["model"])
        if model is None:
            raise CommandError(f"no scorecard model version {opts['model']}")
        if opts["days"] < 1:
            raise CommandError("--days must be at least 1")
        out = self.stdout
        if opts["baseline_sandbox"]:
            n = opts["baseline_sandbox"]
            out.write(f"drawing a development sample of {n} sandbox enterprises ...")
            summary = development_summary(model.spec, sandbox_columns(n, as_of=timezone.localdate()))
            summary["sample"] = f"sandbox population, {n} enterprises, {timezone.localdate().isoformat()}"
            model = scorecard_development_set(model=model, summary=summary, by=None)
        if not model.development:
            raise CommandError(f"model v{model.version} has no development sample summary: train it with "
                               "`train_scorecard --save`, or run this command with --baseline-sandbox N")
        since = timezone.now() - dt.timedelta(days=opts["days"])
        recent, n_recent = scorecard_recent_columns(model, since=since)
        report = psi_against_summary(model.spec, model.development, recent if n_recent else {})

        def fmt(v):
            return "   n/a" if v != v else f"{v:6.3f}"

        out.write(f"scorecard v{model.version} {model.name}: {n_recent} scores in the last {opts['days']} days "
                  f"vs development sample of {report['n_dev']} ({model.development.get('sample', '')})")
        out.write(f"{'feature':<32} {'PSI':>6}  flag")
        for name, value in report["features"].items():
            out.write(f"{name:<32} {fmt(value)}  {report['flags'][name]}")
        out.write(f"{'score':<32} {fmt(report['score'])}  {report['flags']['score']}")
        out.write(f"{'grade mix':<32} {fmt(report['grade'])}  {report['flags']['grade']}")
        out.write("grades dev " + " ".join(f"{g}:{c}" for g, c in report["grade_mix"]["dev"].items())
                  + " | recent " + " ".join(f"{g}:{c}" for g, c in report["grade_mix"]["recent"].items()))
        if opts["json"]:
            clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in report["features"].items()}
            out.write(json.dumps({
                "model": model.version, "days": opts["days"], "n_dev": report["n_dev"], "n_recent": report["n_recent"],
                "features": clean, "score": None if math.isnan(report["score"]) else report["score"],
                "grade": None if math.isnan(report["grade"]) else report["grade"], "flags": report["flags"],
                "grade_mix": report["grade_mix"],
            }, ensure_ascii=False))
