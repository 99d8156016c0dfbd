"""Batch scoring with the vectorised numpy path (the same points as the per-application path, exactly).

    python manage.py score_batch --csv FEATURES.csv --out SCORES.csv [--model VERSION] [--id COLUMN]
                                 [--chunk 100000] [--verify] [--restart]
    python manage.py score_batch --from-scores --out SCORES.csv [--model VERSION] [--verify]

The input has one column per feature of the model (as named in its spec; missing values empty), read in
chunks; each chunk is scored with ``score_batch``/``grade_batch`` and appended to ``--out`` as
``row[, id], points, grade, pd``. Progress is printed per chunk. The run is resumable: rows already in
``--out`` are skipped, so an interrupted run continues where it stopped (``--restart`` starts over).
``--verify`` also scores every row with the pure-Python ``score_one`` and stops at the first difference.
``--from-scores`` re-scores the features stored with every application's champion score (e.g. to see how a
challenger would have graded the book).
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from underwriting.models import Score
from underwriting.scorecard import grade_batch, score_batch, score_one
from underwriting.selectors import scorecard_model


class Command(BaseCommand):
    help = "Score many rows with the numpy batch path; resumable, with progress and optional exact verification."

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--csv", help="CSV with one column per model feature")
        source.add_argument("--from-scores", action="store_true", help="the features stored with the applications' scores")
        parser.add_argument("--out", required=True, help="output CSV (appended to when it exists: resumable)")
        parser.add_argument("--model", type=int, default=None, help="model version (default: the champion)")
        parser.add_argument("--id", dest="id_column", default=None, help="input column copied to the output as id")
        parser.add_argument("--chunk", type=int, default=100_000, help="rows per chunk (default 100000)")
        parser.add_argument("--verify", action="store_true", help="check every row against score_one")
        parser.add_argument("--restart", action="store_true", help="overwrite --out instead of resuming")

    def handle(self, *args, **opts):
        import pandas as pd


        model = scorecard_model(opts["model"])
        if model is None:
            raise CommandError(f"no scorecard model version {opts['model']}")
        if opts["chunk"] < 1:
            raise CommandError("--chunk must be at least 1")
        compiled = model.compiled()
        out_path = Path(opts["out"])
        done = 0
        if out_path.exists() and not opts["restart"]:
            with out_path.open(newline="", encoding="utf-8") as fh:
                done = max(sum(1 for _line in fh) - 1, 0)
        id_column = "application" if opts["from_scores"] else opts["id_column"]
        header = ["row", *([id_column] if id_column else []), "points", "grade", "pd"]
        if opts["from_scores"]:
            chunks = self._score_chunks(opts["chunk"])
        else:
            chunks = self._csv_chunks(Path(opts["csv"]), compiled, opts["chunk"], opts["id_column"], pd)
        mode = "a" if done else "w"
        started, written, row = time.perf_counter(), 0, 0
        self.stdout.write(f"scoring with v{model.version} {model.name}" + (f"; resuming after {done:,} rows" if done else ""))
        with out_path.open(mode, newline="", encoding="utf-8") as fh:
            if not done:
                csv.writer(fh).writerow(header)
            for frame in chunks:
                n = len(frame)
                if row + n <= done:  # already in the output
                    row += n
                    continue
                if row < done:
                    frame = frame.iloc[done - row:]
                    row = done
                written += self._score_frame(compiled, frame, row, id_column, fh, verify=opts["verify"])
                row += len(frame)
                fh.flush()
                self.stdout.write(f"  {row:,} rows scored")
        seconds = time.perf_counter() - started
        rate = written / seconds if seconds > 0 else float("inf")
        self.stdout.write(self.style.SUCCESS(f"{written:,} new rows in {seconds:.2f} s ({rate:,.0f} rows/s)"
                                             + (", every row verified against score_one" if opts["verify"] else "")
                                             + f"; output {out_path}"))

    def _csv_chunks(self, path: Path, compiled, chunk: int, id_column: str | None, pd):
        if not path.is_file():
            raise CommandError(f"CSV file not found: {path}")
        columns = pd.read_csv(path, nrows=0).columns
        absent = [f.name for f in compiled.features if f.name not in columns]
        if absent:
            raise CommandError(f"the CSV has no column for the model's features: {', '.join(absent)}")
        if id_column and id_column not in columns:
            raise CommandError(f"--id column {id_column!r} is not in the CSV")
        # categorical features as text (as in training), numeric ones as numbers: the same types in every chunk
        dtype = {f.name: (float if f.numeric else str) for f in compiled.features}
        try:
            yield from pd.read_csv(path, chunksize=chunk, dtype=dtype, keep_default_na=True)
        except ValueError as exc:
            raise CommandError(f"cannot read {path}: {exc}") from exc

    def _score_chunks(self, chunk: int):
        import pandas as pd


        rows = Score.objects.filter(is_shadow=False).order_by("application_id").values_list("application_id", "features")
        batch: list[dict] = []
        for application_id, features in rows.iterator(chunk_size=min(chunk, 5000)):
            batch.append({"application": application_id, **(features or {})})
            if len(batch) == chunk:
                yield pd.DataFrame(batch)
                batch = []
        if batch:
            yield pd.DataFrame(batch)

    def _score_frame(self, compiled, frame, first_row: int, id_column: str | None, fh, *, verify: bool) -> int:
        points = score_batch(compiled, frame, absent="missing")
        grades = grade_batch(compiled, points)
        pd_by_grade = {letter: str(pd_) for letter, _min, pd_ in compiled.grades}
        if verify:
            names = [f.name for f in compiled.features]
            for i, record in enumerate(frame[[n for n in names if n in frame.columns]].to_dict("records")):
                one = score_one(compiled, record, top_n=0)
                if one.points != int(points[i]) or one.grade != grades[i]:
                    raise CommandError(f"row {first_row + i}: batch {int(points[i])}/{grades[i]} != score_one {one.points}/{one.grade}")
        import pandas as pd

        out = {"row": range(first_row, first_row + len(frame))}
        if id_column:
            out[id_column] = frame[id_column].to_numpy()
        out.update(points=points, grade=grades, pd=[pd_by_grade[g] for g in grades.tolist()])
        pd.DataFrame(out).to_csv(fh, header=False, index=False, lineterminator="\r\n")
        return len(frame)
