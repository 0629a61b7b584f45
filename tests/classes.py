"""A small class of generated submissions for the class-run tests (shards, merge, a cluster):
correct ones and a few kinds of buggy ones, each a standalone file with its own name."""

from __future__ import annotations

from pathlib import Path

from conftest import EXAMPLES

CORRECT = (EXAMPLES / "bug_sign_flip.py").read_text().replace("2 * (T - Y)  # BUG: dJ/dy = 2 (y - t)", "2 * (Y - T)")
VARIANTS = {
    "correct": CORRECT,
    "sign": (EXAMPLES / "bug_sign_flip.py").read_text(),
    "scale": CORRECT.replace("2 * (Y - T)", "(Y - T)"),
    "crash": CORRECT.replace(
        "def gradients(params, X, T, spec):", "def gradients(params, X, T, spec):\n    raise RuntimeError('todo')"
    ),
    "syntax": "def gradients(params, X, T, spec)\n    return []\n",
}
ORDER = ("correct", "sign", "correct", "scale", "correct", "crash", "correct", "syntax")


def make_class(root: Path, n: int) -> list[str]:
    """`n` submissions under `root` (student_00.py ...), kinds cycling through ORDER; their paths."""
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(n):
        kind = ORDER[k % len(ORDER)]
        path = root / f"student_{k:02d}.py"
        path.write_text(f"# submission {k}: {kind}\n" + VARIANTS[kind])
        out.append(str(path))
    return out


def kind_of(path: str) -> str:
    return Path(path).read_text().splitlines()[0].split(": ")[1]
