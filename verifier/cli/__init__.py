"""The command line (DESIGN section 4): the only place that turns records into exit codes.

One module per command (check, gate, crosscheck, grad, merge), each with `add_parser(sub)` and
`run(args) -> exit code`. Exit codes: 0 pass, 1 the implementation failed, 2 the harness could
not do its job.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import VerifierError, harness_bug
from ..safe_io import clean_text
from . import check, common, crosscheck, gate, grad, merge

COMMANDS = {"check": check, "gate": gate, "crosscheck": crosscheck, "grad": grad, "merge": merge}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backprop-verify",
        description="Check that a backpropagation implementation computes the right gradients.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (crosscheck, grad, check, gate, merge):
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command].run(args)
    except VerifierError as exc:
        sys.stderr.write(f"backprop-verify: error: {clean_text(exc)}\n")  # may quote the checked code
        return common.EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("backprop-verify: interrupted\n")
        return 130
    except Exception as exc:  # not the user's fault, and never a verdict: exit 2, with what happened
        sys.stderr.write(f"backprop-verify: error: {harness_bug(exc)}\n")
        return common.EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
