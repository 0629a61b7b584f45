"""The README against the program it describes.

The sample report under "Reading a report" is compared with a real run of the command it shows
(`backprop-verify check examples/bug_missing_activation_derivative.py`, default settings), with
timings masked by tests/golden.py. The run happens in a temporary directory holding a copy of the
example, so the paths it prints (`.backprop-verify/...`, the default --cases-dir) are the README's
and nothing is written into the checkout. It runs as `python -m verifier` (the same program, as the
README says) with this checkout first on the path, since the `backprop-verify` script may belong
to another install.

The cheap quick-start claims are checked too: every command line in the README parses with the
real argument parser, every command of `backprop-verify --help` appears in the README, the Python
names it uses exist, and the files and directories it points to are there.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from golden import diff, mask

import verifier
from verifier import cli
from verifier.records import RunConfig

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def section(title: str) -> str:
    """The text of README section `## title`, up to the next `## `."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end >= 0 else None]


def blocks(text: str, lang: str) -> list[str]:
    return [body for tag, body in FENCE.findall(text) if tag == lang]


def command_lines() -> list[list[str]]:
    """Every `backprop-verify ...` command in the README's sh blocks, as argv (comments dropped;
    `a && backprop-verify ...` counts)."""
    out = []
    for body in blocks(README, "sh"):
        for line in body.splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words[:1] == ["backprop-verify"]:
                    out.append(words[1:])
    return out


def test_the_sample_report_is_the_real_output(tmp_path):
    text = section("Reading a report")
    (sample,) = blocks(text, "text")
    impl = re.match(r"FAIL (\S+): ", sample).group(1)
    assert f"A failing check of `{impl}`" in text  # the command the block stands for: check IMPL, defaults
    (tmp_path / impl).parent.mkdir(parents=True)
    shutil.copy(ROOT / impl, tmp_path / impl)
    p = subprocess.run(
        [sys.executable, "-m", "verifier", "check", impl],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    assert p.returncode == 1, p.stderr
    expected, actual = mask(sample).rstrip("\n"), mask(p.stdout).rstrip("\n")
    changes = diff(expected, actual, "README block")
    assert not changes, f"README.md's sample report is out of date (timings masked):\n{changes}"
    saved = re.search(r"minimal case: (\S+)", sample).group(1)
    assert (tmp_path / saved).is_file()  # the path it prints is where the case went


def test_every_readme_command_line_parses():
    lines = command_lines()
    assert len(lines) >= 10
    parser = cli.build_parser()
    for argv in lines:
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"the README's `backprop-verify {shlex.join(argv)}` does not parse")


def test_the_readme_shows_every_command_of_the_help():
    help_text = cli.build_parser().format_help()
    commands = set(cli.COMMANDS)
    assert all(re.search(rf"^\s+{c}\s", help_text, re.M) for c in commands)
    assert {argv[0] for argv in command_lines()} == commands


def test_the_quick_start_numbers_are_the_defaults():
    default = RunConfig()
    assert "on 200 generated networks (exit 0)" in " ".join(section("Quick start").split())
    assert "# 200 generated networks" in section("Checking your own code")
    assert (default.examples, default.seed) == (200, 0)


def test_the_python_names_exist():
    (code,) = blocks(section("In CI, in Python, in pytest"), "python")
    tree = ast.parse(code)
    used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and getattr(n.value, "id", "") == "verifier"}
    assert used == {"check", "assert_gradients_close"}
    for name in used:
        assert callable(getattr(verifier, name))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = __import__(node.module, fromlist=["_"])
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module}.{alias.name}"


def test_the_files_the_readme_points_to_exist():
    paths = {p for p in re.findall(r"`([\w./-]+/[\w./-]*)`", README) if not p.startswith("-")}
    paths |= {f"reports/examples/check-{v}.{e}" for v in ("fail", "pass") for e in ("txt", "md", "json", "xml", "html")}
    (layout,) = blocks(section("Layout"), "")
    parent = ""
    for line in (ln for ln in layout.splitlines() if ln.strip()):
        nested = line.startswith(" ")  # a line indented under a folder names something inside it
        name = line.split()[0].rstrip(",")
        paths.add(parent + name if nested else name)
        parent = parent if nested else name
    assert {"docs/ci.md", "reports/crosscheck.md", "examples/"} <= paths
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"README.md names {missing}, which the checkout does not have"
