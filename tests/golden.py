"""Comparing real output with expected output: one masking function and one readable diff,
shared by the golden reports (tests/report/test_golden.py) and the README sample
(tests/test_readme.py).

Only what legitimately changes from run to run is masked: wall-clock timings, the temporary
directories a test writes into, and the isolation the machine gave the code under test (its
kernel's namespaces and Landlock, and whether the tests run as root). Gradients, tolerances, verdicts, labels and tables are left as
they are, since those are what an expected output is there to protect.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

UPDATE_ENV = "BACKPROP_VERIFY_UPDATE_GOLDEN"

TIME = "<T>"
TMP = "<tmp>"
ISOLATION = "<isolation>"

# "(3.6 s)" in a text headline, ", 3.2 s" in a markdown one, "17 ms" per case (--verbose)
_DURATION = re.compile(r"(?<![\w.<])\d+(?:\.\d+)?(?:[eE][-+]?\d+)? (m?s)\b")
# "seconds": 2.82564391599999 in JSON; masked to a string, so the file stays valid JSON
_JSON_SECONDS = re.compile(r'"seconds": (?:-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|"<T>")')
# "Isolation: full (namespaces: ...; Landlock ABI 7)." in text and markdown; in JSON its two fields
_ISOLATION_LINE = re.compile(r"^Isolation: .*\.$", re.M)
_JSON_ISOLATION = re.compile(r'"isolation": "[^"]*"|"isolation_mechanisms": \[[^\]]*\]')
_ISOLATION_PROPERTY = re.compile(r'(<property name="isolation" value=)"[^"]*"')


def mask(text: str, *paths) -> str:
    """`text` with its timings and every one of `paths` (the run's temporary directories)
    replaced by placeholders. Idempotent: masking a masked text changes nothing."""
    for path in sorted((str(p) for p in paths), key=len, reverse=True):  # longest first: nested dirs
        text = text.replace(path, TMP)
    text = _JSON_SECONDS.sub(f'"seconds": "{TIME}"', text)
    text = _ISOLATION_LINE.sub(f"Isolation: {ISOLATION}.", text)
    text = _JSON_ISOLATION.sub(lambda m: m.group(0).split(":")[0] + f': "{ISOLATION}"', text)
    text = _ISOLATION_PROPERTY.sub(rf'\1"{ISOLATION}"', text)
    return _DURATION.sub(rf"{TIME} \1", text)


def diff(expected: str, actual: str, name: str = "output") -> str:
    """A unified diff from `expected` to `actual`; empty when they are the same."""
    lines = difflib.unified_diff(
        expected.splitlines(keepends=True),
        actual.splitlines(keepends=True),
        fromfile=f"expected {name}",
        tofile=f"actual {name}",
    )
    return "".join(lines)


def updating() -> bool:
    """Whether this run rewrites the golden files instead of comparing with them."""
    return os.environ.get(UPDATE_ENV, "") not in ("", "0")


def compare(golden: Path, output: str, *paths, update: bool | None = None) -> None:
    """Assert that `output`, masked, is the golden file's text; with BACKPROP_VERIFY_UPDATE_GOLDEN=1
    write it there instead. `update=False`: compare only, whatever the environment says (the
    tests that feed a changed output must never write it)."""
    actual = mask(output, *paths)
    if updating() if update is None else update:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual, encoding="utf-8")
        return
    if not golden.exists():
        raise AssertionError(f"no golden file {golden.name}; write it with {UPDATE_ENV}=1 and review it")
    expected = golden.read_text(encoding="utf-8")
    changes = diff(expected, actual, golden.name)
    if changes:
        raise AssertionError(
            f"the output differs from {golden.name} (timings and temporary paths masked). If the change is "
            f"meant, rewrite the golden files with {UPDATE_ENV}=1 and review the diff.\n{changes}"
        )
