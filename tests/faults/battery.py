"""Runs rows on sides and prints the table.

    .venv/bin/python benchmarks/fault_battery.py                     # quick profile, celeriac only
    .venv/bin/python benchmarks/fault_battery.py --profile soak --celery
    .venv/bin/python benchmarks/fault_battery.py --rows zombie,stall --sides celeriac-redis
    .venv/bin/python benchmarks/fault_battery.py --sides celeriac-sentinel   # kill and failover rows
    .venv/bin/python benchmarks/fault_battery.py --sides celeriac-cluster    # the same on Redis Cluster
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from faults.check import Outcome
from faults.rows import PROFILES, ROWS, Profile, Row, run_row, slug

# Sentinel (a master, a replica, three Sentinels per row) and Cluster (three masters, a replica
# each, per row) run only when named in --sides.
SIDES = ("celeriac-redis", "celeriac-sqlite", "celery-redis", "celeriac-sentinel", "celeriac-cluster")


def plan(sides: tuple[str, ...], rows: list[Row]) -> list[tuple[Row, str, str]]:
    out = []
    for row in rows:
        for side in sides:
            kind, broker = side.split("-")
            if broker in row.brokers and (kind == "celeriac" or row.celery):
                out.append((row, kind, broker))
    return out


COLUMNS = ("row", "side", "lease", "attempted", "ack'd", "lost", "unexpected", "dup (unexcused)", "overwritten",
           "result missing",
           "pool restarts", "recovery s", "result")


def cells(o: Outcome) -> list[str]:
    return [o.row, o.side, o.lease, str(o.attempted), str(o.acknowledged), str(o.lost), str(o.unexpected),
            f"{o.duplicates} ({o.unexcused})", str(o.overwritten),
            str(o.missing), "-" if o.restarts is None else str(o.restarts),
            "-" if o.recovery is None else f"{o.recovery:.1f}", "pass" if o.passed else "FAIL"]


def table(outcomes: list[Outcome], markdown: bool = False) -> str:
    rows = [cells(o) for o in outcomes]
    if markdown:
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
    else:
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)] if rows else []
        lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    notes = []
    for o in outcomes:
        why = [o.error] if o.error else o.failures
        extra = ", ".join(f"{k}: {v}" for k, v in o.extra.items() if v not in (0, None, [], {}))
        if why or extra:
            notes.append(f"- {o.row} / {o.side}: {'; '.join(w for w in why if w) or 'ok'}"
                         + (f" ({extra})" if extra else ""))
    passed = sum(o.passed for o in outcomes)
    return "\n".join([*lines, "", *notes, "", f"{passed} passed, {len(outcomes) - passed} failed"])


def run(profile: Profile, sides: tuple[str, ...], rows: list[Row], root: Path) -> list[Outcome]:
    outcomes = []
    for row, kind, broker in plan(sides, rows):
        began = time.monotonic()
        print(f"[{time.strftime('%H:%M:%S')}] {row.name} / {kind} {broker} ...", file=sys.stderr, flush=True)
        outcome = run_row(row, kind, broker, profile, root)
        print(f"    {'pass' if outcome.passed else 'FAIL'} in {time.monotonic() - began:.0f} s "
              f"{outcome.error or '; '.join(outcome.failures)}", file=sys.stderr, flush=True)
        outcomes.append(outcome)
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="celeriac's fault battery (and Celery's figures beside it)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--celery", action="store_true", help="also run the rows that apply on Celery 5 + Redis")
    parser.add_argument("--sides", help=f"comma-separated, from {', '.join(SIDES)}")
    parser.add_argument("--rows", help="comma-separated substrings of row names")
    parser.add_argument("--keep", help="directory for logs and ledgers (kept)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)
    sides = tuple(args.sides.split(",")) if args.sides else SIDES[:3] if args.celery else SIDES[:2]
    rows = [r for r in ROWS if not args.rows or any(s in slug(r.name) for s in args.rows.split(","))]
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="celeriac-faults-"))
    outcomes = run(PROFILES[args.profile], sides, rows, root)
    print(table(outcomes, markdown=args.markdown))
    print(f"logs and ledgers: {root}", file=sys.stderr)
    return 0 if all(o.passed for o in outcomes) else 1
