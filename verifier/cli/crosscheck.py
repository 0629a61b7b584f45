"""`backprop-verify crosscheck`: the references against each other (exit 2 on a disagreement)."""

from __future__ import annotations

from .. import casefile
from ..report import render
from ..run.crosscheck import run_crosscheck
from .common import EXIT_ERROR, EXIT_PASS, Progress, add_cases, add_output, note, write_output

HELP = "cross-check the reference implementations against each other"
MINIMAL_CASE = "crosscheck-minimal-case.json"


def add_parser(sub) -> None:
    p = sub.add_parser("crosscheck", help=HELP)
    add_cases(p)
    add_output(p)


def run(args) -> int:
    result = run_crosscheck(examples=args.examples, seed=args.seed, progress=Progress("crosscheck", args.quiet))
    if result.minimal_case is not None:
        path = casefile.save(result.minimal_case, MINIMAL_CASE)
        note(args, f"smallest disagreeing case written to {path}; see it with: backprop-verify grad {path}")
    write_output(render(result, args.format), args.output)
    return EXIT_PASS if result.verdict == "pass" else EXIT_ERROR
