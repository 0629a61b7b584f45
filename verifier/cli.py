"""The command line (DESIGN section 4): the only place that turns records into exit codes.

Exit codes: 0 pass, 1 the implementation failed, 2 the harness could not do its job.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import report
from .errors import SpecError, VerifierError

EXIT_PASS, EXIT_FAIL, EXIT_ERROR = 0, 1, 2
FORMATS = ("text", "markdown", "json", "junit", "html")


def _positive(text):
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n}: give a number >= 1")
    return n


def _common(p, examples=200):
    p.add_argument("--examples", type=_positive, default=examples, help="generated cases to run (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated cases (default 0)")
    _output(p)


def _output(p):
    p.add_argument("--format", choices=FORMATS, default="text", help="report format (default text)")
    p.add_argument("--output", default=None, help="file to write the report to; - or nothing: standard output")
    p.add_argument("--quiet", action="store_true", help="no progress, no notes on standard error")
    p.add_argument("--verbose", action="store_true", help="more detail on standard error")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="backprop-verify",
        description="Check that a backpropagation implementation computes the right gradients.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("crosscheck", help="cross-check the reference implementations against each other")
    _common(p)
    p = sub.add_parser("grad", help="every reference's loss and gradients on one case file")
    p.add_argument("case", metavar="CASE.json")
    _output(p)
    from . import check_cli

    check_cli.add_commands(sub, _common)
    return parser


def write_output(text, path):
    if path in (None, "-"):
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise SpecError(f"cannot write the report to {path}: {exc.strerror}") from None


def render(result, fmt):
    renderer = report.RENDERERS.get(fmt)
    if renderer is None:
        raise SpecError(f"format {fmt} is not available yet; use one of {', '.join(report.RENDERERS)}")
    return renderer(result)


class Progress:
    """A one-line progress counter on standard error when it is a terminal; silent otherwise."""

    def __init__(self, label, quiet=False):
        self.label = label
        self.on = not quiet and sys.stderr.isatty() and not os.environ.get("CI")

    def __call__(self, done, total):
        if self.on and (done == total or done % 10 == 0):
            width = 30
            filled = int(width * min(done, total) / max(total, 1))
            sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
            if done >= total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def cmd_crosscheck(args):
    from .crosscheck import run_crosscheck

    result = run_crosscheck(examples=args.examples, seed=args.seed, progress=Progress("crosscheck", args.quiet))
    if result.minimal_case is not None:
        from . import casefile

        path = casefile.save(result.minimal_case, "crosscheck-minimal-case.json")
        if not args.quiet:
            sys.stderr.write(f"smallest disagreeing case written to {path}; "
                             f"see it with: backprop-verify grad {path}\n")
    write_output(render(result, args.format), args.output)
    return EXIT_PASS if result.verdict == "pass" else EXIT_ERROR


def cmd_grad(args):
    from . import casefile
    from .crosscheck import run_references

    case = casefile.load(args.case)
    outputs, failures = run_references(case, _references())
    if failures:
        raise VerifierError("; ".join(f.detail for f in failures))
    result = {
        "case": args.case,
        "loss": {n: float(o.loss) for n, o in outputs.items()},
        "grads": {n: [{"W": dW, "b": db} for dW, db in o.grads] for n, o in outputs.items()},
    }
    write_output(render(result, args.format), args.output)
    return EXIT_PASS


def _references():
    from .references import REFERENCES

    return REFERENCES


COMMANDS = {"crosscheck": cmd_crosscheck, "grad": cmd_grad}


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    from . import check_cli

    commands = {**COMMANDS, **check_cli.COMMANDS}
    try:
        return commands[args.command](args)
    except VerifierError as exc:
        sys.stderr.write(f"backprop-verify: error: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("backprop-verify: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
