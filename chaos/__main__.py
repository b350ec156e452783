"""``python -m chaos``: run the failure scenarios of issue 13 against stacks of their own.

Prints one row per scenario (columns: ``chaos.report``), writes the table as JSON to
``chaos/last-run.json`` and every component's log under ``chaos/runs/<timestamp>/<scenario>/``,
and exits 1 if any bad column of any row is not 0 (2 on a usage error).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from chaos.report import Row, as_json, passed, table
from chaos.runner import Options, run_scenario
from chaos.scenarios import SCENARIOS
from chaos.stack import ROOT, Stack

HERE = ROOT / "chaos"


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    defaults = Options()
    parser = argparse.ArgumentParser(
        prog="python -m chaos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="scenarios:\n"
        + "\n".join(f"  {name:16} {s.summary}" for name, s in SCENARIOS.items()),
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=list(SCENARIOS),
        metavar="NAME",
        help="run only this scenario (repeatable; default: all)",
    )
    parser.add_argument(
        "--files",
        type=_positive_int,
        default=defaults.files,
        help="uploads per scenario (default %(default)s)",
    )
    parser.add_argument(
        "--outage",
        type=_seconds,
        default=defaults.outage,
        help="seconds each fault is held (default %(default)s)",
    )
    parser.add_argument(
        "--settle",
        type=_seconds,
        default=defaults.settle,
        help="seconds after healing for every file to settle (default %(default)s)",
    )
    parser.add_argument(
        "--rate",
        type=_seconds,
        default=defaults.rate,
        help="uploads started a second (default %(default)s)",
    )
    parser.add_argument(
        "--prompt",
        type=_seconds,
        default=defaults.prompt,
        help="promptness bound of slow-webhook and stale-backlog (default %(default)s)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="after each scenario, leave its stack up until Enter is pressed",
    )
    parser.add_argument("--runs", type=Path, default=HERE / "runs", help="where run directories go")
    parser.add_argument(
        "--json", type=Path, default=HERE / "last-run.json", help="where the table goes as JSON"
    )
    args = parser.parse_args(argv)
    if args.rate <= 0:
        parser.error("--rate must be > 0")
    return args


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError("must be a number of seconds >= 0")
    return value


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM unwinds like Ctrl-C, so every stack comes down."""
    raise KeyboardInterrupt


def _pause(stack: Stack) -> None:
    print(f"stack kept up: {stack.url} (database {stack.database_url}, logs {stack.logs})")
    try:
        input("press Enter to tear it down ")
    except EOFError:
        print("no terminal to wait on: tearing it down")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    options = Options(args.files, args.outage, args.settle, args.rate, args.prompt)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in background
    run_dir = args.runs / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    names = args.scenario or list(SCENARIOS)
    rows: list[Row] = []
    print(f"chaos: {len(names)} scenario(s), {options}; logs in {run_dir}", flush=True)
    try:
        for name in names:
            started = time.monotonic()
            print(f"chaos: {name}: {SCENARIOS[name].summary} ...", flush=True)
            try:
                row = run_scenario(
                    SCENARIOS[name], options, run_dir / name, keep=_pause if args.keep else None
                )
            except Exception as exc:  # noqa: BLE001 - one broken scenario must not stop the rest
                (run_dir / name).mkdir(parents=True, exist_ok=True)
                (run_dir / name / "harness-error.txt").write_text(traceback.format_exc())
                row = Row(name, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, None, None, error=repr(exc))
            rows.append(row)
            print(
                f"chaos: {name}: done in {time.monotonic() - started:.0f} s: {_summary(row)}",
                flush=True,
            )
    except KeyboardInterrupt:
        print("chaos: interrupted; every stack was taken down", file=sys.stderr)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if rows:
            print(table(rows))
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(as_json(rows, {**asdict(options), "run_dir": str(run_dir)}))
    return 0 if passed(rows) and len(rows) == len(names) else 1


def _summary(row: Row) -> str:
    return "ok" if not row.bad else "bad: " + ", ".join(row.bad)


if __name__ == "__main__":
    sys.exit(main())
