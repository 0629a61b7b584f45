"""`backprop-verify grad CASE.json`: every reference's loss and gradients on one case."""

from __future__ import annotations

from .. import casefile
from ..report import render
from ..run.grad import run_grad
from .common import EXIT_PASS, add_output, write_output

HELP = "every reference's loss and gradients on one case file"


def add_parser(sub) -> None:
    p = sub.add_parser("grad", help=HELP)
    p.add_argument("case", metavar="CASE.json")
    add_output(p)


def run(args) -> int:
    result = run_grad(casefile.load(args.case), args.case)
    write_output(render(result, args.format), args.output)
    return EXIT_PASS
