"""Train a scorecard from a CSV and optionally store it as a new (inactive) model version.

    python manage.py train_scorecard --csv data.csv --target creditability --bad bad \
        [--folds 5] [--seed 0] [--name NAME] [--save] [--json]

Prints the cross-validated AUC / KS / Gini (mean and per fold).  ``--save``
stores the spec and metrics as a new ``ScorecardModel`` version with
``is_active=False`` (promote it to champion/challenger in admin) with a summary of the
development sample (the PSI baseline of ``scorecard_psi``).  With
``--json`` the last line printed is a single JSON object with the metrics.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from underwriting.scorecard import development_summary
from underwriting.services import scorecard_model_create
from underwriting.training import train_scorecard


class Command(BaseCommand):
    help = "Train a WoE/logistic scorecard from a CSV file, print CV metrics, optionally save it."

    def add_arguments(self, parser):
        parser.add_argument("--csv", required=True, help="CSV file with one row per loan")
        parser.add_argument("--target", required=True, help="target column")
        parser.add_argument("--bad", required=True, help="value of the target column that means bad")
        parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
        parser.add_argument("--seed", type=int, default=0, help="random seed of the folds (default 0)")
        parser.add_argument("--name", default=None, help="model name (default: trained-<csv name>)")
        parser.add_argument("--save", action="store_true", help="store a new, inactive model version")
        parser.add_argument("--json", action="store_true", help="end with one line of JSON metrics")

    def handle(self, *args, **opts):
        import pandas as pd


        path = Path(opts["csv"])
        if not path.is_file():
            raise CommandError(f"CSV file not found: {path}")
        try:
            df = pd.read_csv(path)
        except Exception as exc:
            raise CommandError(f"cannot read {path}: {exc}") from exc
        name = opts["name"] or f"trained-{path.stem}"
        folds = opts["folds"]
        if folds < 2:
            raise CommandError("--folds must be at least 2")

        try:
            result = train_scorecard(
                df, target=opts["target"], bad_value=opts["bad"], folds=folds, seed=opts["seed"], name=name
            )
        except (ValueError, TypeError) as exc:
            raise CommandError(str(exc)) from exc
        m = result.metrics

        out = self.stdout
        out.write(f"{name}: {m['n']} rows, bad rate {m['bad_rate']:.2%}, {folds}-fold CV (seed {opts['seed']})")
        out.write(f"{'fold':>6} {'AUC':>7} {'KS':>7} {'Gini':>7} {'AUC(LR)':>8} {'vars':>5}")
        for f in m["folds"]:
            out.write(
                f"{f['fold']:>6} {f['auc']:>7.4f} {f['ks']:>7.4f} {f['gini']:>7.4f} {f['auc_lr']:>8.4f}"
                f" {f['n_features']:>5}"
            )
        out.write(f"{'mean':>6} {m['auc']:>7.4f} {m['ks']:>7.4f} {m['gini']:>7.4f} {m['auc_lr']:>8.4f}")
        out.write(f"AUC std {m['auc_std']:.4f}")
        final = m["final"]
        out.write(f"final model: {len(final['features'])} variables, base points {result.spec['base_points']}")
        for feat in final["features"]:
            out.write(f"  {feat:<45} IV {final['iv'][feat]:.4f}")
        for feat, why in result.dropped.items():
            out.write(f"  dropped {feat}: {why}")
        for g in result.spec["grades"]:
            mp = "-" if g["min_points"] is None else g["min_points"]
            out.write(f"  grade {g['grade']}: min points {mp}, PD {g['pd']}")

        saved = None
        if opts["save"]:

            # the development sample, summarised on the model's own bins: the baseline of the PSI report
            development = development_summary(result.spec, df)
            development["sample"] = path.name
            saved = scorecard_model_create(name=name, spec=result.spec, metrics=m, development=development)
            out.write(self.style.SUCCESS(f"saved scorecard model {name!r} version {saved.version} (inactive; "
                                         f"activate it in admin as champion or challenger)"))

        if opts["json"]:
            summary = {
                "name": name,
                "auc": m["auc"],
                "ks": m["ks"],
                "gini": m["gini"],
                "auc_std": m["auc_std"],
                "auc_lr": m["auc_lr"],
                "n": m["n"],
                "bad_rate": m["bad_rate"],
                "folds": [{k: f[k] for k in ("auc", "ks", "gini")} for f in m["folds"]],
                "features": final["features"],
                "saved_version": saved.version if saved is not None else None,
            }
            out.write(json.dumps(summary, ensure_ascii=False))
