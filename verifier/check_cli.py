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


def _impl_options(p, common, several=False):
    p.add_argument("impl", metavar="IMPL", nargs="+" if several else None, help="a .py file or an importable module defining gradients(params, X, T, spec)")
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
    _impl_options(p, common, several=True)
    p.add_argument("--jobs", type=cli._positive, default=1,
                   help="with several IMPLs: how many to check at once, in separate processes (default 1)")
    p = sub.add_parser("gate", help="CI regression gate: the check, plus each tensor's precision against a baseline")
    _impl_options(p, _gate_common)
    p.add_argument("--baseline", required=True, metavar="FILE", help="the baseline JSON to compare with (or write)")
    p.add_argument("--update", action="store_true", help="(re)write the baseline from this run, if the check passes")
    p.add_argument("--factor", type=_factor, default=10.0, metavar="F",
                   help="fail when a tensor's max relative error grows more than F times (default 10)")
    p.add_argument("--markdown", metavar="PATH", help="also write a markdown report to PATH")
    p.add_argument("--junit", metavar="PATH", help="also write a JUnit XML report to PATH")


def _gate_common(p):
    # no defaults here: an absent option means "the baseline's"
    p.add_argument("--examples", type=cli._positive, help="generated cases (default: the baseline's; 200 for a new one)")
    p.add_argument("--seed", type=int, help="seed of the generated cases (default: the baseline's; 0 for a new one)")
    cli._output(p)


def _factor(text):
    try:
        f = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not f >= 1 or f == float("inf"):
        raise argparse.ArgumentTypeError(f"{text}: give a finite number >= 1")
    return f


def check_kwargs(args):
    """run_check keyword arguments from the parsed command line."""
    acts = _names(args.activations) if args.activations else None
    kw = dict(examples=args.examples, seed=args.seed, batch=args.batch, loss=args.loss,
              timeout=args.timeout, cases_dir=args.cases_dir, progress=cli.Progress("check", args.quiet),
              mode=args.mode)
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

    if len(args.impl) > 1:  # a whole class of submissions: verifier/batch.py
        from . import batch

        return batch.cmd_batch(args, check_kwargs(args))
    args.impl = args.impl[0]
    result = run_check(args.impl, **check_kwargs(args))
    cli.write_output(cli.render(result, args.format), args.output)
    _notes(args, result)
    return cli.EXIT_PASS if result.verdict == "pass" else cli.EXIT_FAIL


def cmd_gate(args):
    from . import gate, report
    from .check import run_check

    if args.case:
        raise SpecError("gate runs the baseline's generated cases; --case is for check")
    also = [(path, fmt) for path, fmt in ((args.markdown, "markdown"), (args.junit, "junit")) if path]
    for _, fmt in also + [(args.output, args.format)]:
        if fmt not in report.RENDERERS:
            raise SpecError(f"format {fmt} is not available yet; use one of {', '.join(report.RENDERERS)}")
    given = {k: getattr(args, k) for k in gate.CONFIG_KEYS}
    given["activations"] = _names(args.activations) if args.activations else None
    baseline = None if args.update else gate.load(args.baseline)
    config = gate.configuration(args.impl, given, baseline, args.baseline)
    result = run_check(args.impl, **check_kwargs(argparse.Namespace(**{**vars(args), **config})))
    if args.update:
        result = gate.update(result, config, args.baseline, args.impl)
    else:
        result = gate.judge(result, baseline, args.baseline, args.factor)
    for path, fmt in [(args.output, args.format)] + also:
        cli.write_output(cli.render(result, fmt), path)
    _notes(args, result)
    return cli.EXIT_PASS if result.verdict == "pass" else cli.EXIT_FAIL


def _notes(args, result):
    """Standard error: nothing with --quiet; the gate's note; with --verbose, timing and precision."""
    if args.quiet:
        return
    gate = result.extra.get("gate", {})
    lines = [gate["note"]] if gate.get("note") else []
    if args.verbose:
        per_case = 1000 * result.seconds / max(result.examples, 1)
        lines.append(f"{result.examples} cases in {result.seconds:.2f} s ({per_case:.0f} ms per case), seed "
                     f"{result.seed}, judged to {result.dtype or 'no'} accuracy")
        lines += [f"  layer {t['layer']} {t['param']}: max rel err {t['max_rel']:.3g}, baseline "
                  f"{t['baseline_max_rel']:.3g} ({t['ratio']:.3g}x){' REGRESSED' if t['regressed'] else ''}"
                  for t in gate.get("tensors", ())]
    for line in lines:
        sys.stderr.write(f"backprop-verify: {line}\n")


COMMANDS = {"check": cmd_check, "gate": cmd_gate}
