"""The house: imports in verifier/ run one way. No circle, nothing imports a package above it,
no private name crosses a module boundary, and reference_impls/ never imports verifier.

The checker reads the code with ast (every import, at the top or inside a function), so it
sees what farm-style pictures and readers see; each rule has a planted twin below that must
be caught, beside the real tree that must pass."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT

# Floors, bottom up: a module may import from its own package and from lower floors only.
FLOORS = {
    "records": 0,
    "errors": 0,
    "specs": 1,
    "strategies": 2,
    "layer_strategies": 1,
    "safe_io": 1,
    "casefile": 2,
    "judge": 3,
    "sandbox": 3,
    "report": 3,
    "run": 4,
    "api": 5,
    "cli": 5,
    "pytest_plugin": 6,
    "__main__": 6,
    "__init__": 6,
}


def modules(root: Path, package: str = "verifier") -> dict[str, Path]:
    """{dotted name: file} of every module of `package` under `root`."""
    out = {}
    for f in sorted((root / package).rglob("*.py")):
        parts = list(f.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _resolve(name: str, level: int, module: str, is_package: bool) -> str:
    if level == 0:
        return name
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def imports(root: Path, package: str = "verifier"):
    """[(importer, imported module, names taken, line)] for every import of a `package` module."""
    mods = modules(root, package)
    out = []
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] in (package, "reference_impls"):
                        out.append((mod, a.name, (), node.lineno))
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(node.module or "", node.level, mod, is_package)
                if target.split(".")[0] not in (package, "reference_impls"):
                    continue
                plain = []
                for a in node.names:  # `from . import casefile` imports a module, not a name
                    sub = f"{target}.{a.name}"
                    if sub in mods:
                        out.append((mod, sub, (), node.lineno))
                    else:
                        plain.append(a.name)
                if plain or not node.names:
                    out.append((mod, target, tuple(plain), node.lineno))
    return out


def _top(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def circles(edges) -> list[list[str]]:
    """Every strongly connected set of more than one module (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {}
    for a, b, _, _ in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def upward(edges, package: str = "verifier") -> list[str]:
    """Imports from one package of `package` into another on the same floor or higher."""
    bad = []
    for a, b, _, line in edges:
        if not b.startswith(package + ".") and b != package:
            continue
        ta, tb = _top(a), _top(b)
        if b == package:
            bad.append(f"{a}:{line} imports the package facade {b}")
        elif ta != tb and FLOORS.get(tb, 99) >= FLOORS.get(ta, -1):
            bad.append(f"{a}:{line} imports {b} (floor {FLOORS.get(tb)} from floor {FLOORS.get(ta)})")
    return bad


def private(edges, root: Path, package: str = "verifier") -> list[str]:
    """Private names (or private modules) taken from another module."""
    bad = [
        f"{a}:{line} takes {n} from {b}"
        for a, b, names, line in edges
        for n in names
        if n.startswith("_") and not n.startswith("__")
    ]
    bad += [
        f"{a}:{line} imports the private module {b}"
        for a, b, _, line in edges
        if any(p.startswith("_") and not p.startswith("__") for p in b.split("."))
    ]
    mods = modules(root, package)
    for mod, path in mods.items():  # module._name through an imported module
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {
            (a.asname or a.name)
            for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom)
            for a in n.names
            if f"{_resolve(n.module or '', n.level, mod, path.name == '__init__.py')}.{a.name}" in mods
        }
        for n in ast.walk(tree):
            if (
                isinstance(n, ast.Attribute)
                and isinstance(n.value, ast.Name)
                and n.value.id in aliases
                and n.attr.startswith("_")
                and not n.attr.startswith("__")
            ):
                bad.append(f"{mod}:{n.lineno} reads {n.value.id}.{n.attr}")
    return bad


def test_the_harness_has_no_import_circle():
    assert circles(imports(ROOT)) == []


def test_no_package_imports_one_on_its_floor_or_above():
    assert upward(imports(ROOT)) == []
    assert set(_top(m) for m in modules(ROOT)) <= set(FLOORS), "a new package needs its floor in FLOORS"


def test_no_private_name_crosses_a_module_boundary():
    assert private(imports(ROOT), ROOT) == []
    assert private(imports(ROOT, "reference_impls"), ROOT, "reference_impls") == []


def test_reference_impls_never_import_verifier():
    assert [e for e in imports(ROOT, "reference_impls") if e[1].split(".")[0] == "verifier"] == []


# --- planted twins: each rule catches what it claims ----------------------------------------


def _tree(tmp_path, files: dict[str, str]) -> Path:
    for name, code in files.items():
        f = tmp_path / "verifier" / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(textwrap.dedent(code))
    for d in [p for p in (tmp_path / "verifier").rglob("*") if p.is_dir()] + [tmp_path / "verifier"]:
        (d / "__init__.py").touch()
    return tmp_path


@pytest.mark.parametrize(
    "files, rule",
    [
        (
            {
                "judge/a.py": "from .b import f\n",
                "judge/b.py": "def f():\n    from .a import g\n",
            },
            "circle",
        ),
        ({"judge/a.py": "from ..run.check import run_check\n", "run/check.py": "run_check = 1\n"}, "upward"),
        ({"judge/a.py": "from ..report import common\n", "report/common.py": "x = 1\n"}, "upward"),
        ({"run/a.py": "from ..judge.rows import _row\n", "judge/rows.py": "_row = 1\n"}, "private"),
        ({"run/a.py": "from ..judge import rows\nrows._heat()\n", "judge/rows.py": "def _heat(): ...\n"}, "private"),
    ],
    ids=["circle inside a function", "judge imports run", "judge imports report", "private name", "private attribute"],
)
def test_a_planted_breach_is_caught(tmp_path, files, rule):
    root = _tree(tmp_path, files)
    edges = imports(root)
    found = {"circle": circles(edges), "upward": upward(edges), "private": private(edges, root)}
    assert found[rule], f"{rule} not caught in {files}"
    assert all(not v for k, v in found.items() if k != rule), found


def test_a_clean_planted_tree_passes(tmp_path):
    root = _tree(
        tmp_path,
        {
            "records.py": "x = 1\n",
            "judge/rows.py": "from ..records import x\ndef row(): ...\n",
            "run/check.py": "from ..judge.rows import row\nfrom ..judge import rows\nrows.row()\n",
        },
    )
    edges = imports(root)
    assert circles(edges) == [] and upward(edges) == [] and private(edges, root) == []


def test_every_package_is_installed():
    """`pip install .` ships what pyproject's package finder matches: every folder of the harness."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    from setuptools import find_packages

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    found = set(find_packages(str(ROOT), **config["tool"]["setuptools"]["packages"]["find"]))
    packages = {".".join(p.relative_to(ROOT).parent.parts) for p in ROOT.glob("*/**/__init__.py")}
    packages = {p for p in packages if p.split(".")[0] in ("verifier", "reference_impls")}
    assert packages and packages <= found, sorted(packages - found)
