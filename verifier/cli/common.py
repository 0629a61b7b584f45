"""What every command shares: exit codes, the output options, writing a report, progress."""

from __future__ import annotations

import argparse
import os
import sys

from .. import safe_io
from ..records import RunConfig
from ..report import FORMATS, render

EXIT_PASS, EXIT_FAIL, EXIT_ERROR = 0, 1, 2
EXIT = {"pass": EXIT_PASS, "fail": EXIT_FAIL}  # any other verdict ("error"): EXIT_ERROR
DEFAULT = RunConfig()


def exit_code(results) -> int:
    """The worst exit code of these results: 2 (harness error) > 1 (failed) > 0 (passed)."""
    return max((EXIT.get(r.verdict, EXIT_ERROR) for r in results), default=EXIT_PASS)


def positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n}: give a number >= 1")
    return n


def add_cases(p: argparse.ArgumentParser) -> None:
    """--examples and --seed, with the run configuration's defaults."""
    p.add_argument(
        "--examples", type=positive, default=DEFAULT.examples, help="generated cases to run (default %(default)s)"
    )
    p.add_argument("--seed", type=int, default=DEFAULT.seed, help="seed of the generated cases (default %(default)s)")


def add_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=tuple(FORMATS), default="text", help="report format (default text)")
    p.add_argument("--output", default=None, help="file to write the report to; - or nothing: standard output")
    p.add_argument("--quiet", action="store_true", help="no progress, no notes on standard error")
    p.add_argument("--verbose", action="store_true", help="more detail on standard error")


def write_output(text: str, path: str | None, *, own_dir: bool = False) -> None:
    """`text` to standard output (None or -) or to the file `path`, written safely (safe_io):
    a link or FIFO planted at `path` is refused, never written through. `own_dir`: `path`'s
    directory is a class run's output directory, which must be this user's."""
    if path in (None, "-"):
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    safe_io.write_text(path, text, own_dir=own_dir, what="report")


def write_report(result, fmt: str, path: str | None) -> None:
    write_output(render(result, fmt), path)


class Progress:
    """A one-line progress counter on standard error when it is a terminal; silent otherwise."""

    def __init__(self, label: str, quiet: bool = False):
        self.label = label
        self.on = not quiet and sys.stderr.isatty() and not os.environ.get("CI")

    def __call__(self, done: int, total: int) -> None:
        if self.on and (done == total or done % 10 == 0):
            width = 30
            filled = int(width * min(done, total) / max(total, 1))
            sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
            if done >= total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def note(args, line: str) -> None:
    """One line on standard error, unless --quiet."""
    if not args.quiet:
        sys.stderr.write(f"backprop-verify: {line}\n")
