"""The `check` command (and `gate`, which builds on it): argument parsing and exit codes."""

from __future__ import annotations

import argparse
import sys

from . import casefile, cli
from .errors import SpecError


def _names(text):
    return [n for part in text for n in part.replace(",", " ").split() if n]


def _sizes(text):
    try:
        sizes = [int(n) for n in text.replace(",", " ").replace("-", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give layer sizes like 4,8,3") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give at least two sizes, each >= 1, like 4,8,3")
    return sizes


def _impl_options(p, common):
    p.add_argument("impl", metavar="IMPL", help="a .py file or an importable module defining gradients(params, X, T, spec)")
    common(p)
    p.add_argument("--sizes", type=_sizes, help="pin the layer sizes n_0..n_L, e.g. 4,8,3")
    p.add_argument("--activations", nargs="+", help="activation names to draw from; with --sizes, one per layer pins them")
    p.add_argument("--loss", help="pin the loss (sse, half_sse, mse, bce, softmax_ce)")
    p.add_argument("--batch", type=cli._positive, help="pin the batch size")
    p.add_argument("--mode", choices=("full", "fast"), default="full", help="full: every entry (default)")
    p.add_argument("--case", help="rerun exactly this case file (the replay of a failure)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds allowed per call of the implementation (default 10)")
    p.add_argument("--cases-dir", default=".backprop-verify", help="where minimal failing cases are saved (default .backprop-verify)")


def add_commands(sub, common):
    p = sub.add_parser("check", help="check an implementation's gradients")
    _impl_options(p, common)


def check_kwargs(args):
    """run_check keyword arguments from the parsed command line."""
    acts = _names(args.activations) if args.activations else None
    kw = dict(examples=args.examples, seed=args.seed, batch=args.batch, loss=args.loss,
              timeout=args.timeout, cases_dir=args.cases_dir, progress=cli.Progress("check", args.quiet))
    if args.case:
        if any(v is not None for v in (args.sizes, args.activations, args.loss, args.batch)):
            raise SpecError("--case pins everything; drop --sizes, --activations, --loss and --batch")
        kw["case"] = casefile.load(args.case)
    if args.sizes is not None:
        kw["sizes"] = tuple(args.sizes)
        if acts and len(acts) == len(args.sizes) - 1 and len(args.sizes) > 2:
            kw["layer_activations"] = tuple(acts)
            acts = None
    kw["activations"] = acts
    return kw


def cmd_check(args):
    from .check import run_check

    result = run_check(args.impl, **check_kwargs(args))
    cli.write_output(cli.render(result, args.format), args.output)
    return cli.EXIT_PASS if result.verdict == "pass" else cli.EXIT_FAIL


COMMANDS = {"check": cmd_check}
