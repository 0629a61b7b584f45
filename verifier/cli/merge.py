"""`backprop-verify merge DIR...`: one class summary (and every report, in any format) from the
JSON reports of its shards (`check ... --shard I/N --format json --output DIR`).

Output as for a class run of check: with --output DIR one report per submission in DIR and the
summary on standard output; without, everything on standard output. With --points the class is
graded again under that rubric; without, each report keeps the points its shard gave it.
Exit code: the worst of the submissions' (2 > 1 > 0), as the unsharded run's would be.
"""

from __future__ import annotations

from ..run.merge import load_class
from . import grading
from .check import check_output, write_reports
from .common import EXIT_PASS, add_output, exit_code

HELP = "one class summary from the JSON reports of its shards (check --shard I/N)"


def add_parser(sub) -> None:
    p = sub.add_parser("merge", help=HELP)
    p.add_argument("dirs", nargs="+", metavar="DIR", help="a shard's --output directory (or a JSON report file)")
    add_output(p)
    grading.add_grading_options(p)


def run(args) -> int:
    check_output(args.format, args.output)
    rubric = grading.rubric_of(args)
    results = grading.graded(load_class(args.dirs), args, rubric)
    write_reports(results, args.format, args.output)
    return exit_code(results) if results else EXIT_PASS
