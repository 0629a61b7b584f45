"""`backprop-verify gate IMPL --baseline FILE [--update]`: the CI regression gate."""

from __future__ import annotations

import argparse

from .. import safe_io
from ..errors import SpecError
from ..report import render
from ..run import gate
from ..run.check import run_check
from .check import add_network_options, config_from, names, verbose_notes
from .common import add_output, exit_code, positive, write_output

HELP = "CI regression gate: the check, plus each tensor's precision against a baseline"


def factor(text: str) -> float:
    try:
        f = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not f >= 1 or f == float("inf"):
        raise argparse.ArgumentTypeError(f"{text}: give a finite number >= 1")
    return f


def add_parser(sub) -> None:
    p = sub.add_parser("gate", help=HELP)
    add_network_options(p)
    # no defaults here: an absent option means "the baseline's"
    p.add_argument("--examples", type=positive, help="generated cases (default: the baseline's; 200 for a new one)")
    p.add_argument("--seed", type=int, help="seed of the generated cases (default: the baseline's; 0 for a new one)")
    add_output(p)
    p.add_argument("--baseline", required=True, metavar="FILE", help="the baseline JSON to compare with (or write)")
    p.add_argument("--update", action="store_true", help="(re)write the baseline from this run, if the check passes")
    p.add_argument(
        "--factor",
        type=factor,
        default=gate.DEFAULT_FACTOR,
        metavar="F",
        help="fail when a tensor's max relative error grows more than F times (default %(default)g)",
    )
    p.add_argument("--markdown", metavar="PATH", help="also write a markdown report to PATH")
    p.add_argument("--junit", metavar="PATH", help="also write a JUnit XML report to PATH")


def run(args) -> int:
    if args.case:
        raise SpecError("gate runs the baseline's generated cases; --case is for check")
    for path, what in ((args.output, "report"), (args.markdown, "markdown report"), (args.junit, "JUnit report")):
        safe_io.refuse_planted(path, what=what)  # now, not after the whole run
    given = {k: getattr(args, k) for k in gate.CONFIG_KEYS}
    given["activations"] = names(args.activations) if args.activations else None
    baseline = None if args.update else gate.load(args.baseline)
    options = gate.configuration(args.impl, given, baseline, args.baseline)
    config, _ = config_from(argparse.Namespace(**{**vars(args), **options}))
    result = run_check(args.impl, config)
    if args.update:
        result = gate.update(result, options, args.baseline, args.impl)
    elif baseline is not None:
        result = gate.judge(result, baseline, args.baseline, args.factor)
    also = [(path, fmt) for path, fmt in ((args.markdown, "markdown"), (args.junit, "junit")) if path]
    for path, fmt in [(args.output, args.format)] + also:
        write_output(render(result, fmt), path)
    g = result.extra.get("gate", {})
    verbose_notes(
        args,
        result,
        notes=[g["note"]] if g.get("note") else [],
        verbose=[
            f"  layer {t['layer']} {t['param']}: max rel err {t['max_rel']:.3g}, baseline "
            f"{t['baseline_max_rel']:.3g} ({t['ratio']:.3g}x){' REGRESSED' if t['regressed'] else ''}"
            for t in g.get("tensors", ())
        ],
    )
    return exit_code([result])
