"""`make bench`: every benchmark on the real stack, figures printed and written to docs/benchmarks.md.

    .venv/bin/python bench/run_all.py [--only fast_track,floor,load,drawdown,pdf,lists,scoring,nightly]
    BENCH_SHORT=1 .venv/bin/python bench/run_all.py      (the short mode CI can afford)

Uses its own Postgres database (`bench`, recreated) and Redis DB 10; gunicorn and a real Celery worker run as
subprocesses on loopback. Targets (DESIGN/issue #9, on this 2-core machine): fast track submit → approved
p95 ≤ 0.25 s, submit → disbursed ≤ 1 s; ≥ 100 submissions/s with p95 < 200 ms, no errors, none lost; batch
scoring ≥ 700,000 rows/s; nightly monitoring of 100,000 loans ≤ 30 s; a contract PDF ≤ 0.5 s; queues and API
lists at 100,000 applications with a constant number of queries and p95 ≤ 150 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    PY,
    ROOT,
    SHORT,
    fresh_database,
    load,
    save,
    stack,
    stack_env,
    stack_sizes,
    use_stack_env,
)

DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- bench:run_all:start -->", "<!-- bench:run_all:end -->"
STEPS = ["fast_track", "floor", "load", "drawdown", "pdf", "lists", "scoring", "nightly"]


def seed_reference() -> None:
    from casework.demo import seed_org, seed_products

    seed_products()
    seed_org("demo-pass")


def step_scoring() -> dict:
    rows = "200000" if SHORT else "1000000"
    r = subprocess.run([PY, "bench/bench_scoring.py", "--rows", rows, "--repeat", "3", "--no-train"], cwd=ROOT,
                       capture_output=True, text=True, env={k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS")})
    print(r.stdout)
    if r.returncode != 0:
        return {"error": r.stderr[-2000:]}
    # score_batch is the figure (features → points → grade); the object-array line is what a DataFrame gives.
    rates = [int(m.replace(",", "")) for m in re.findall(r"^score_batch.*=\s+([\d,]+) rows/s", r.stdout, re.M)]
    return {"rows": int(rows), "rows_per_s_best": max(rates) if rates else None,
            "rows_per_s_worst": min(rates) if rates else None, "output": r.stdout.strip()}


def step_nightly() -> dict:
    script = ROOT / "bench" / "bench_nightly.py"
    if not script.exists():
        return {"skipped": "bench/bench_nightly.py is not there yet"}
    loans = "10000" if SHORT else "100000"
    r = subprocess.run([PY, str(script), "--loans", loans, "--reseed"], cwd=ROOT, capture_output=True, text=True,
                       env=stack_env())
    print(r.stdout[-4000:])
    if r.returncode != 0:
        return {"error": (r.stdout + r.stderr)[-2000:]}
    runs = re.findall(r"^(.*?): ([\d.]+) s for ([\d,]+) active loans", r.stdout, re.M)
    return {"loans": int(loans), "runs": [{"label": a, "seconds": float(b), "active": c} for a, b, c in runs],
            "output": r.stdout.strip()[-3000:]}


def _interrupt(*_args):
    raise KeyboardInterrupt


def main() -> None:
    import signal

    # A timeout's SIGTERM unwinds like Ctrl-C, so the stack's gunicorn and worker are stopped, not orphaned.
    signal.signal(signal.SIGTERM, _interrupt)
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", default=",".join(STEPS))
    ap.add_argument("--no-doc", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = ap.parse_args()
    steps = [s for s in args.only.split(",") if s]
    started = time.perf_counter()
    results: dict[str, dict] = {}
    needs_db = {"fast_track", "floor", "load", "drawdown", "pdf", "lists"} & set(steps)
    if needs_db:
        print("== fresh bench database", flush=True)
        fresh_database()
        use_stack_env()
        seed_reference()
    if {"fast_track", "floor", "load", "drawdown"} & set(steps):
        with stack() as base:
            if "fast_track" in steps:
                from bench.bench_fast_track import run as fast_track

                print("== fast track through the API", flush=True)
                results["fast_track"] = fast_track(base, 20 if SHORT else 60)
                print(results["fast_track"], flush=True)
            if "floor" in steps:
                from bench.bench_floor import run as floor

                print("== the floor: one row, one audit event, one no-op task per authenticated POST", flush=True)
                results["floor"] = floor(base)
                print({k: v for k, v in results["floor"].items() if k != "steps"}, flush=True)
            if "load" in steps:
                from bench.bench_load import run as load_test

                print("== sustained submissions (locust)", flush=True)
                results["load"] = load_test(base)
                print({k: v for k, v in results["load"].items() if k != "steps"}, flush=True)
            if "drawdown" in steps:
                from bench.bench_drawdown import run as drawdown

                print("== credit-line drawdowns through the API", flush=True)
                results["drawdown"] = drawdown(base)
                print(results["drawdown"], flush=True)
    if "pdf" in steps:
        from bench.bench_pdf import run as pdf

        print("== contract PDF", flush=True)
        results["pdf"] = pdf()
        print(results["pdf"], flush=True)
    if "lists" in steps:
        from bench.bench_lists import run as lists

        print("== queues and lists at scale", flush=True)
        results["lists"] = lists(10_000 if SHORT else 100_000)
        print(results["lists"]["summary"], flush=True)
    if "scoring" in steps:
        print("== batch scoring (bench/bench_scoring.py)", flush=True)
        results["scoring"] = step_scoring()
    if "nightly" in steps:
        print("== nightly monitoring (bench/bench_nightly.py)", flush=True)
        results["nightly"] = step_nightly()
    for name, data in results.items():
        save(name, data)
    meta = {"when": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "short": SHORT,
            "cpus": os.cpu_count(), "python": platform.python_version(), "seconds": round(time.perf_counter() - started),
            **stack_sizes()}
    save("meta", meta)
    text = render({name: load(name) for name in STEPS}, meta)
    print(text)
    print(ratios({name: load(name) for name in ("floor", "load", "drawdown")}))
    if not args.no_doc and not SHORT:
        write_doc(text)


def ratios(r: dict) -> str:
    """Submissions/s and drawdowns/s beside the floor measured on the same stack (issue #20: goal ≥ 50 %)."""
    floor = (r.get("floor") or {}).get("best_rate")
    if not r.get("floor"):
        return "floor: not measured (run with --only floor,load,drawdown)"
    if not floor:
        return "floor: no step passed (server p95 < 200 ms) on this run: the machine is too loaded to give ratios"
    out = [f"floor: {floor}/s (one row, one audit event, one no-op task; server p95 {r['floor'].get('best_p95_ms')} ms)"]
    ld, dd = r.get("load") or {}, r.get("drawdown") or {}
    if ld.get("best_rate"):
        out.append(f"submissions: {ld['best_rate']}/s whole stack = {100 * ld['best_rate'] / floor:.0f} % of the floor")
    if (ld.get("web_only") or {}).get("best_rate"):
        out.append(f"submissions, web tier alone: {ld['web_only']['best_rate']}/s = {100 * ld['web_only']['best_rate'] / floor:.0f} % of the floor")
    if dd.get("sustained"):
        out.append(f"drawdowns: {dd['sustained']['per_s']}/s = {100 * dd['sustained']['per_s'] / floor:.0f} % of the floor")
    return "\n".join(out)


def _f(value, unit="s", digits=3) -> str:
    return "—" if value is None else f"{value:.{digits}f} {unit}".strip()


def _share(rate, floor: dict | None) -> str:
    best = (floor or {}).get("best_rate")
    return f"; {100 * rate / best:.0f} % of the floor" if rate and best else ""


def render(r: dict, meta: dict) -> str:
    out = [START, "## Proof under load (issue #9)", "",
           f"Measured {meta['when']} on {meta['cpus']} cores, Python {meta['python']}"
           f"{' (BENCH_SHORT)' if meta['short'] else ''}, with `make bench` (`.venv/bin/python bench/run_all.py`): "
           f"gunicorn ({meta['web_workers']} × {meta['threads']} gthread) + Postgres + Redis + two Celery workers "
           f"(the cases' queue: concurrency {meta['worker_concurrency']}; the batch queue: 1, idle), all on this machine, "
           "loopback only. Raw figures: `var/bench/*.json`.", "",
           "| what | figure | target |", "| --- | --- | --- |"]
    ft = r.get("fast_track")
    if ft:
        a, d = ft["submit_to_approved"], ft["submit_to_disbursed"]
        out += [f"| fast track submit → `approved` (client-observed, n={a['n']}) | p50 {_f(a['p50'])}, p95 {_f(a['p95'])} | p95 ≤ 0.25 s |",
                f"| fast track submit → `disbursed` (accept and sign by the script at once) | p50 {_f(d['p50'])}, p95 {_f(d['p95'])} | ≤ 1 s |",
                f"| … of which the submit request / accept-offer (contract PDF) / sign requests | p50 {_f(ft['submit_request']['p50'])} / "
                f"{_f(ft['accept_offer_request']['p50'])} / {_f(ft['sign_request']['p50'])} | |",
                f"| server side (audit trail) submit → approve / → disbursed | p95 {_f(ft['server_submit_to_approve']['p95'])} / "
                f"{_f(ft['server_submit_to_disbursed']['p95'])} | |"]
    fl = r.get("floor")
    if fl:
        out += [f"| the floor: authenticated POST writing one row and one audit event, one no-op task on commit | "
                f"{fl.get('best_rate') or '—'}/s (p95 {_f(fl.get('best_p95_ms'), 'ms', 0)}) | |"]
    ld = r.get("load")
    if ld:
        best = ld.get("best_rate")
        out += [f"| sustained submissions with p95 < 200 ms, 0 errors, 0 lost — whole stack on the 2 cores (web, worker scoring, "
                f"Postgres, Redis, locust) | {best or '—'} submissions/s "
                f"(p95 {_f(ld.get('best_p95_ms'), 'ms', 0)}; {ld.get('lost', '—')} lost in DB)"
                f"{_share(best, fl)} | ≥ 60/s, ≥ 50 % of the floor |"]
        wo = ld.get("web_only")
        if wo:
            out += [f"| … the web tier alone (worker paused during each step, then drained: scoring elsewhere) | "
                    f"{wo.get('best_rate') or '—'} submissions/s (p95 {_f(wo.get('best_p95_ms'), 'ms', 0)}; "
                    f"{wo.get('lost', '—')} lost in DB) | ≥ 100/s |"]
    dd = r.get("drawdown")
    if dd:
        lat, sus = dd["request_to_funded"], dd["sustained"]
        out += [f"| credit-line drawdown request → funded loan (201, n={lat['n']}) | p50 {_f(lat['p50'])}, p95 {_f(lat['p95'])} | p95 ≤ 0.2 s |",
                f"| sustained drawdowns ({sus['threads']} clients on {sus.get('lines', sus['threads'])} lines, {sus['seconds']} s; "
                f"every 10th key replayed; server p95 {_f(sus.get('server_p95_ms'), 'ms', 0)}) | "
                f"{sus['per_s']} drawdowns/s ({sus['errors']} errors, {sus['lost']} lost, {sus['doubled']} doubled, "
                f"{sus['replay_mismatch']} replays answered differently){_share(sus['per_s'], fl)} | ≥ 100/s, none lost or doubled |"]
    pdf = r.get("pdf")
    if pdf:
        out += [f"| contract PDF (render, {pdf['pages']} pages) | p50 {_f(pdf['render']['p50'])}, max {_f(pdf['render']['max'])} | ≤ 0.5 s |"]
    sc = r.get("scoring")
    if sc and sc.get("rows_per_s_best"):
        out += [f"| batch scoring, `score_batch` ({sc['rows']:,} rows) | {sc.get('rows_per_s_worst') or sc['rows_per_s_best']:,} – "
                f"{sc['rows_per_s_best']:,} rows/s | ≥ 700,000 rows/s |"]
    ni = r.get("nightly")
    if ni and ni.get("runs"):
        first = ni["runs"][0]
        out += [f"| nightly monitoring of {ni['loans']:,} loans | {first['seconds']:.2f} s | ≤ 30 s |"]
    elif ni:
        out += [f"| nightly monitoring | {ni.get('skipped') or 'failed: see var/bench/nightly.json'} | ≤ 30 s |"]
    li = r.get("lists")
    if li:
        for name, row in li["pages"].items():
            out += [f"| {name} at {li['applications']:,} applications | p95 {_f(row['large']['p95'] * 1000, 'ms', 1)}, "
                    f"{row['large']['queries']} queries (at {li['small_n']:,}: {row['small']['queries']}) | p95 ≤ 150 ms, constant |"]
    if ld and ld.get("steps"):
        out += ["", f"Load steps (locust, headless, {ld.get('seconds_per_step', '?')} s each): rate offered → achieved, latency "
                "on the server (gunicorn's access log) and as locust saw it, failures, submitted vs counted in the database, "
                "left unscored after the drain. A step passes on the server's p95 < 200 ms with no failure and none lost:", "",
                "| worker | offered/s | achieved/s | server p50 / p95 ms | locust p50 / p95 ms | failures | submitted | in DB | unscored |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for label, series in (("scoring meanwhile", ld), ("paused, drained after", ld.get("web_only") or {})):
            for s in series.get("steps", []):
                out += [f"| {label} | {s['rate']} | {s['achieved']:.1f} | {s.get('server_p50', '—')} / {s.get('server_p95', '—')} | "
                        f"{s['p50']:.0f} / {s['p95']:.0f} | {s['failures']} | {s['ok']} | {s['in_db']} | {s.get('unscored_after_drain', 0)} |"]
        cal = ld.get("calibration")
        if cal:
            out += ["", f"Locust's own share, measured in the same run: 10 reads a second of the product list took "
                    f"{cal['server_p50']} / {cal['server_p95']} ms (p50 / p95) on the server and {cal['p50']:.0f} / {cal['p95']:.0f} ms "
                    "as locust reported them — its greenlets share the two cores with everything it measures."]
    notes = r.get("notes") or {}
    for _k, v in notes.items():
        out += ["", v]
    out += ["", END]
    return "\n".join(out)


def write_doc(text: str) -> None:
    current = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n\nFigures measured on this project's 2-core machine.\n"
    if START in current and END in current:
        before, rest = current.split(START, 1)
        after = rest.split(END, 1)[1]
        current = before + text + after
    else:
        current = current.rstrip() + "\n\n" + text + "\n"
    DOC.write_text(current, encoding="utf-8")
    print(f"written to {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
