"""The command line (DESIGN section 4): the only place that turns records into exit codes.

One module per command (check, gate, crosscheck, grad, merge), each with `add_parser(sub)` and
`run(args) -> exit code`. Exit codes: 0 pass, 1 the implementation failed, 2 the harness could
not do its job.

Start-up is part of what a user waits for, so `main` imports only the command it runs, and for
the commands that run checked code (check, gate) it starts the sandbox child first
(verifier/sandbox/prestart.py): the child's interpreter and numpy load while the harness loads.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
import shutil
import sys

COMMANDS = ("check", "gate", "crosscheck", "grad", "merge")
_ORDER = ("crosscheck", "grad", "check", "gate", "merge")  # as `--help` lists them
_RUN_CODE = ("check", "gate")  # the commands whose first step is a sandbox child


def command(name: str):
    """The module of one command (verifier/cli/NAME.py), imported when first asked for."""
    if name not in COMMANDS:
        raise KeyError(name)
    return importlib.import_module(f".{name}", __name__)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of the command `only` (what `main` needs to run it)."""
    parser = argparse.ArgumentParser(
        prog="backprop-verify",
        description="Check that a backpropagation implementation computes the right gradients.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in (only,) if only in COMMANDS else _ORDER:
        command(name).add_parser(sub)
    return parser


def early_child(argv: list[str]) -> None:
    """Start the sandbox child of a `check` or `gate` run before the harness is imported.

    Only what a child's start depends on is read here: the command and --python (resolved
    as the option's own type does; a value that is not an interpreter starts nothing, and the
    parser then says what is wrong). Several processes (--jobs), a cluster, --help or
    --version start nothing: their children are started where they run."""
    if not argv or argv[0] not in _RUN_CODE or any(a in ("-h", "--help", "--version") for a in argv):
        return
    python = None
    for k, arg in enumerate(argv):
        name, eq, value = arg.partition("=")
        if not eq:
            value = argv[k + 1] if k + 1 < len(argv) else ""
        if name == "--jobs" and value != "1" or name == "--scheduler":
            return
        if name == "--python":
            found = shutil.which(value) if value else None
            if not found:
                return
            python = os.path.abspath(found)
    from ..sandbox.prestart import prestart

    prestart(python)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    early_child(argv)  # first: nothing of the harness is imported yet
    from ..errors import VerifierError, harness_bug
    from ..safe_io import clean_text
    from .common import EXIT_ERROR

    args = build_parser(argv[0] if argv else None).parse_args(argv)
    try:
        return command(args.command).run(args)
    except VerifierError as exc:
        sys.stderr.write(f"backprop-verify: error: {clean_text(exc)}\n")  # may quote the checked code
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("backprop-verify: interrupted\n")
        return 130
    except Exception as exc:  # not the user's fault, and never a verdict: exit 2, with what happened
        sys.stderr.write(f"backprop-verify: error: {harness_bug(exc)}\n")
        return EXIT_ERROR


def entry() -> None:
    """The `backprop-verify` command (and `python -m verifier`): main(), then the exit.

    Everything a run writes is written and closed by then; what is left is the interpreter
    tearing down every module and object, tens of milliseconds a user waits for and nothing
    else. So the exit handlers run (a child nobody took is killed, its directory removed),
    the standard streams are flushed, and the process ends without that teardown."""
    code = main()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away (`| head`): the verdict stands
            pass
    os._exit(code)


if __name__ == "__main__":
    entry()
