"""Options for graders and class runs that check and merge share: --points and --audience
(verifier/run/grading.py), --shard and --scheduler (verifier/run/batch.py, run/cluster.py)."""

from __future__ import annotations

import argparse
from dataclasses import replace

from ..run.grading import AUDIENCES, load_rubric, with_grading

GRADER_FORMATS = ("gradescope", "prairielearn")


def shard_arg(text: str) -> tuple[int, int]:
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give the shard as I/N, e.g. 1/4") from None
    if not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"{text}: give I/N with 1 <= I <= N, e.g. 1/4")
    return index, count


def add_grading_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--points", metavar="FILE", help="a TOML or JSON rubric: points per layer, loss, train_step, misbehaviour"
    )
    p.add_argument(
        "--audience",
        choices=AUDIENCES,
        help="who reads the report: student (the minimal case, worst entries and label, no harness "
        "internals) or instructor; default student for gradescope and prairielearn, else instructor",
    )


def add_class_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--shard",
        type=shard_arg,
        metavar="I/N",
        help="check only the I-th of N slices of the IMPLs (a stable split by name), for a CI matrix; "
        "join the slices with backprop-verify merge",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run each IMPL as a task on the Dask cluster at ADDRESS (e.g. tcp://10.0.0.5:8786); "
        "needs the cluster extra",
    )


def audience_of(args) -> str:
    return args.audience or ("student" if args.format in GRADER_FORMATS else "instructor")


def rubric_of(args):
    """The rubric of --points, read and checked before any check runs (None without it)."""
    return load_rubric(args.points) if args.points else None


def graded(results, args, rubric=None) -> list:
    """The results with their points (`rubric`, rubric_of's) attached, when the run asked for
    points, an audience or a grader's format; a result that already carries points (a shard's)
    keeps them unless --points is given again."""
    if not (args.points or args.audience or args.format in GRADER_FORMATS):
        return list(results)
    audience = audience_of(args)
    out = []
    for r in results:
        had = r.extra.get("grading")
        if had and not args.points:
            out.append(with_grading(r, None, audience) if not had.get("items") else _audience(r, had, audience))
        else:
            out.append(with_grading(r, rubric, audience))
    return out


def _audience(r, had, audience):
    return replace(r, extra={**r.extra, "grading": {**had, "audience": audience}})
