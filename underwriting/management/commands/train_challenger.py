"""Train the blended challenger scorecard (WoE/logistic + EBM main effects, as one points table) from a CSV.

    python manage.py train_challenger --csv data.csv --target creditability --bad bad \
        [--interaction a/b ...] [--weight 0.5] [--folds 5] [--seed 0] [--name NAME] [--points] \
        [--save] [--challenger] [--json]

Prints the cross-validated AUC / KS / Gini (mean and per fold), the out-of-fold calibration by quintile and the
grade table; ``--points`` prints every feature's bins and points. ``--save`` stores a new, inactive model version
with its development summary; ``--challenger`` also makes it the challenger (scores in shadow; the champion stays
until the challenger wins the back-test on the bank's own outcomes). Method: docs/scorecard.md, section 6.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from underwriting.challenger import add_interactions, train_challenger
from underwriting.scorecard import development_summary
from underwriting.services import scorecard_challenger_set, scorecard_model_create


def points_table(spec: dict) -> list[str]:
    """One line per bin: feature label, bin, points."""
    lines = [f"base points {spec['base_points']}"]
    for f in spec["features"]:
        label = f"{f['label']['en']}"
        if f["type"] == "numeric":
            lower = "-inf"
            for b in f["bins"]:
                upper = "+inf" if b["upper"] is None else f"{b['upper']:g}"
                lines.append(f"  {label:<40} [{lower}, {upper}) {b['points']:>5}")
                lower = upper
        else:
            for b in f["bins"]:
                lines.append(f"  {label:<40} {' | '.join(b['values'])[:60]:<60} {b['points']:>5}")
            lines.append(f"  {label:<40} {'(other)':<60} {f.get('other_points', 0):>5}")
        lines.append(f"  {label:<40} {'(missing)':<60} {f['missing_points']:>5}")
    return lines


class Command(BaseCommand):
    help = "Train the blended (WoE/LR + EBM) challenger scorecard from a CSV, print CV metrics, optionally save it."

    def add_arguments(self, parser):
        parser.add_argument("--csv", required=True)
        parser.add_argument("--target", required=True)
        parser.add_argument("--bad", required=True)
        parser.add_argument("--interaction", action="append", default=[], help="a/b or a*b (repeatable)")
        parser.add_argument("--weight", type=float, default=0.5, help="weight of the WoE/LR scorecard (default 0.5)")
        parser.add_argument("--folds", type=int, default=5)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--name", default=None)
        parser.add_argument("--points", action="store_true", help="print the points table")
        parser.add_argument("--save", action="store_true", help="store a new, inactive model version")
        parser.add_argument("--challenger", action="store_true", help="with --save: score in shadow as the challenger")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **opts):
        import pandas as pd

        path = Path(opts["csv"])
        if not path.is_file():
            raise CommandError(f"CSV file not found: {path}")
        df = pd.read_csv(path)
        name = opts["name"] or f"challenger-{path.stem}"
        if opts["folds"] < 2:
            raise CommandError("--folds must be at least 2")
        try:
            result = train_challenger(df, target=opts["target"], bad_value=opts["bad"], name=name,
                                      interactions=opts["interaction"], weight=opts["weight"], folds=opts["folds"],
                                      seed=opts["seed"])
        except (ValueError, TypeError) as exc:
            raise CommandError(str(exc)) from exc
        m, out = result.metrics, self.stdout
        out.write(f"{name}: {m['n']} rows, bad rate {m['bad_rate']:.2%}, {opts['folds']}-fold CV (seed {opts['seed']}), "
                  f"{m['seconds']} s")
        for f in m["folds"]:
            out.write(f"  fold {f['fold']}: AUC {f['auc']:.4f} KS {f['ks']:.4f} Gini {f['gini']:.4f}")
        out.write(f"  mean:   AUC {m['auc']:.4f} KS {m['ks']:.4f} Gini {m['gini']:.4f} (AUC std {m['auc_std']:.4f})")
        out.write(f"out-of-fold calibration (Brier {m['brier_oof']:.4f}):")
        for c in m["calibration_oof"]:
            out.write(f"  quintile {c['quintile']}: n {c['n']}, observed {c['observed']:.2%}, predicted {c['predicted']:.2%}")
        for g in result.spec["grades"]:
            out.write(f"  grade {g['grade']}: min points {'-' if g['min_points'] is None else g['min_points']}, PD {g['pd']}")
        if opts["points"]:
            for line in points_table(result.spec):
                out.write(line)
        saved = None
        if opts["save"]:
            development = development_summary(result.spec, add_interactions(df, result.spec["interactions"]))
            development["sample"] = path.name
            saved = scorecard_model_create(name=name, spec=result.spec, metrics=m, development=development)
            if opts["challenger"]:
                scorecard_challenger_set(model=saved, by=None)
            out.write(self.style.SUCCESS(f"saved scorecard model {name!r} version {saved.version}"
                                         + (" as the challenger (shadow)" if opts["challenger"] else " (inactive)")))
        if opts["json"]:
            out.write(json.dumps({"name": name, "auc": m["auc"], "ks": m["ks"], "gini": m["gini"],
                                  "folds": [{k: f[k] for k in ("auc", "ks", "gini")} for f in m["folds"]],
                                  "seconds": m["seconds"], "saved_version": saved.version if saved else None}))
