"""False positives and the detection ladder of the judge `check` applies.

    python benchmarks/detection_ladder.py [--cases N] [--seed S] [--source hypothesis|uniform]

Over N generated cases (every regime: integers with exact relu kinks, normal, saturated, tiny)
this judges, in-process (no sandbox, for speed), the gradients and loss values of several
CORRECT implementations with `verifier.judge.full.judge_gradients`, the very judgement `check`
applies, and counts every case where a correct implementation gets any failure row (a false
positive). Then the detection ladder: one entry of the float64 delta-rule gradient is
multiplied by (1 + rel) for rel = 1e-2 .. 1e-9 and the judge must catch it.

Writes reports/detection_ladder.md (or --output). Cases are reproducible: each is
`strategies.case_from_draw(spec, batch, regime, seed, layer)` and a false positive is printed
with exactly those arguments.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from reference_impls import delta_rule  # noqa: E402
from reference_impls.model import FUSED  # noqa: E402
from verifier import strategies  # noqa: E402
from verifier.errors import ReferenceDisagreement  # noqa: E402
from verifier.judge.full import judge_gradients  # noqa: E402
from verifier.judge.oracle import Oracle  # noqa: E402
from verifier.judge.shape import NOTE_KINDS  # noqa: E402
from verifier.records import NetworkSpec  # noqa: E402

EXAMPLES = ROOT / "examples"
RUNGS = tuple(10.0**-k for k in range(2, 10))  # 1e-2 .. 1e-9
SIGNIFICANT = 1e3  # an entry is "significant" when |g| >= SIGNIFICANT * its tolerance


# --- the correct implementations ------------------------------------------------------------


def _load(name, path):
    """A fresh module object for the file at `path` (never the one in sys.modules)."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _relu_one(mod):
    """Switch a copy of correct_vectorized to the other kink convention: relu'(0) = 1 and
    leaky_relu'(0) = 1 (the derivative from the right), every other h' unchanged."""
    base = mod._dact

    def _dact(name, Z, A):
        if name == "relu":
            return (Z >= 0).astype(Z.dtype)
        if name == "leaky_relu":
            return np.where(Z >= 0, 1.0, 0.01).astype(Z.dtype)
        return base(name, Z, A)

    mod._dact = _dact
    return mod


def textbook(params, X, T, spec):
    """A correct backprop as a textbook writes it, nothing fused: sigmoid 1/(1 + e^-z) with
    h' = y(1 - y), tanh' = 1 - y^2, softplus' = 1/(1 + e^-z), every loss through dJ/dY times
    h' (bce included) and softmax through its full Jacobian diag(y) - y y^T."""
    dt = X.dtype
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    As, Zs = [X], []
    for (W, b), name in zip(params, spec.activations):
        Z = As[-1] @ W.T + b
        if name == "softmax":
            E = np.exp(Z - Z.max(axis=1, keepdims=True))
            A = E / E.sum(axis=1, keepdims=True)
        else:
            A = {
                "identity": lambda z: z,
                "sigmoid": sig,
                "tanh": np.tanh,
                "relu": lambda z: np.maximum(z, 0),
                "leaky_relu": lambda z: np.where(z > 0, z, dt.type(0.01) * z),
                "softplus": lambda z: np.logaddexp(dt.type(0), z),
            }[name](Z)
        Zs.append(Z)
        As.append(A)

    def dh(name, Z, A):
        return {
            "identity": lambda: np.ones_like(Z),
            "sigmoid": lambda: A * (1 - A),
            "tanh": lambda: 1 - A * A,
            "relu": lambda: (Z > 0).astype(dt),
            "leaky_relu": lambda: np.where(Z > 0, 1, 0.01).astype(dt),
            "softplus": lambda: sig(Z),
        }[name]()

    Y, N, B = As[-1], As[-1].size, As[-1].shape[0]
    J, dY = {
        "sse": lambda: (np.sum((Y - T) ** 2), 2 * (Y - T)),
        "half_sse": lambda: (np.sum((Y - T) ** 2) / 2, Y - T),
        "mse": lambda: (np.sum((Y - T) ** 2) / N, 2 * (Y - T) / N),
        "bce": lambda: (-np.sum(T * np.log(Y) + (1 - T) * np.log(1 - Y)) / N, (Y - T) / (Y * (1 - Y)) / N),
        "softmax_ce": lambda: (-np.sum(T * np.log(Y)) / B, -T / Y / B),
    }[spec.loss]()
    if spec.activations[-1] == "softmax":
        jac = np.einsum("nk,km->nkm", Y, np.eye(Y.shape[1], dtype=dt)) - np.einsum("nk,nm->nkm", Y, Y)
        delta = np.einsum("nkm,nk->nm", jac, dY)
    else:
        delta = dY * dh(spec.activations[-1], Zs[-1], Y)
    grads = []
    for l in range(len(params) - 1, -1, -1):
        grads.append((delta.T @ As[l], delta.sum(axis=0)))
        if l > 0:
            delta = (delta @ params[l][0]) * dh(spec.activations[l - 1], Zs[l - 1], As[l])
    return J, grads[::-1]


def _in_float32(fn):
    """Run `fn` on params, X and T rounded to float32 and return float32 gradients."""

    def run(params, X, T, spec):
        p32 = [(W.astype(np.float32), b.astype(np.float32)) for W, b in params]
        J, grads = fn(p32, X.astype(np.float32), T.astype(np.float32), spec)
        return J, [(dW.astype(np.float32), db.astype(np.float32)) for dW, db in grads]

    return run


def implementations():
    """name -> (gradients function returning (J, grads), supported activations or None,
    supported losses or None). Each is correct; any failure row it gets is a false positive."""
    vec = _load("_ladder_vectorized", EXAMPLES / "correct_vectorized.py")
    one = _relu_one(_load("_ladder_relu_one", EXAMPLES / "correct_vectorized.py"))
    loops = _load("_ladder_loops", EXAMPLES / "correct_loops.py")
    more = {}
    if (EXAMPLES / "correct_float32.py").exists():
        f32 = _load("_ladder_float32", EXAMPLES / "correct_float32.py")
        more["correct_float32 example"] = (f32.gradients, None, None)
    return {
        "delta_rule float64": (delta_rule.gradients, None, None),
        "vectorized float32": (_in_float32(vec.gradients), None, None),
        "relu'(0)=1 float64": (one.gradients, None, None),
        "relu'(0)=1 float32": (_in_float32(one.gradients), None, None),
        "correct_vectorized float64": (vec.gradients, None, None),
        "correct_loops float64": (loops.gradients, loops.SUPPORTED_ACTIVATIONS, loops.SUPPORTED_LOSSES),
        **more,
        "textbook float64": (textbook, None, None),
        "textbook float32": (_in_float32(textbook), None, None),
    }


# Not required to pass: plain formulas that lose the loss's digits near a saturated output (cases
# keep y strictly inside (0, 1), so their gradients stay finite, but log(1 - y) of a y near 1 keeps
# only a few digits). Run to show that what fails them is a loss value that is really off, never a
# gradient judged too tightly.
NAIVE = ("textbook float64", "textbook float32")

IMPL_NOTES = {
    "delta_rule float64": "reference_impls.delta_rule, float64 (the oracle's own code: a sanity row)",
    "vectorized float32": "examples/correct_vectorized.py on params, X, T cast to float32, float32 out",
    "relu'(0)=1 float64": "correct_vectorized with relu'(0) = 1 and leaky_relu'(0) = 1, float64",
    "relu'(0)=1 float32": "the same in float32",
    "correct_vectorized float64": "examples/correct_vectorized.py as is (y(1-y), 0.5(1+tanh(z/2)), ...)",
    "correct_loops float64": "examples/correct_loops.py as is, on the specs it supports (scalar loops)",
    "correct_float32 example": "examples/correct_float32.py as is (float32 throughout)",
    "textbook float64": "nothing fused: 1/(1+e^-z), bce and softmax_ce through dJ/dY, softmax's full Jacobian",
    "textbook float32": "the same in float32",
}


def supports(entry, spec):
    _, acts, losses = entry
    return (acts is None or set(spec.activations) <= set(acts)) and (losses is None or spec.loss in losses)


# --- cases ------------------------------------------------------------------------------------


def _saturable(spec):
    """The layers cases() may saturate: any but a bce or softmax_ce output."""
    L = len(spec.sizes) - 1
    return [l for l in range(1, L + 1) if l < L or (spec.activations[-1], spec.loss) not in FUSED]


@st.composite
def draws(draw, max_depth=4, max_width=6, max_batch=5):
    """(spec, batch, regime, seed, layer): what strategies.cases() draws, before the values, so
    that every case can be replayed with strategies.case_from_draw(*draw)."""
    spec = draw(strategies.network_specs(max_depth=max_depth, max_width=max_width))
    batch = draw(st.integers(1, max_batch))
    regime = draw(st.sampled_from(strategies.REGIMES))
    layer = 0
    if regime == "saturated":
        choices = _saturable(spec)
        if choices:
            layer = draw(st.sampled_from(choices))
        else:
            regime = "normal"
    return spec, batch, regime, draw(st.integers(0, 2**32 - 1)), layer


def uniform_draws(n, seed, max_depth=4, max_width=6, max_batch=5):
    """n draws with every choice uniform (numpy), for wide and deep networks as often as small."""
    rng = np.random.default_rng(seed)
    hidden, out = strategies.HIDDEN_ACTIVATIONS, strategies.ALL_ACTIVATIONS
    for _ in range(n):
        depth = int(rng.integers(1, max_depth + 1))
        sizes = tuple(int(s) for s in rng.integers(1, max_width + 1, depth + 1))
        loss = str(rng.choice(strategies.ALL_LOSSES))
        if loss == "softmax_ce" and sizes[-1] == 1:  # a softmax over one output is never drawn
            sizes = sizes[:-1] + (int(rng.integers(2, max(max_width, 2) + 1)),)
        outs = [a for a in out if strategies.compatible(a, loss) and not (a == "softmax" and sizes[-1] == 1)]
        acts = tuple(str(rng.choice(hidden)) for _ in range(depth - 1)) + (str(rng.choice(outs)),)
        spec = strategies.validate_spec(NetworkSpec(sizes, acts, loss))
        regime, layer = str(rng.choice(strategies.REGIMES)), 0
        if regime == "saturated":
            choices = _saturable(spec)
            if choices:
                layer = int(rng.choice(choices))
            else:
                regime = "normal"
        yield spec, int(rng.integers(1, max_batch + 1)), regime, int(rng.integers(0, 2**32)), layer


class CachedOracle(Oracle):
    """Oracle whose judgement(dtype) is computed once per dtype: the same numbers, judged many
    times (once per implementation and per rung of the ladder)."""

    def judgement(self, dtype):
        cache = self.__dict__.setdefault("_cache", {})
        key = np.dtype(dtype).name
        if key not in cache:
            cache[key] = super().judgement(dtype)
        return cache[key]


# --- one case ---------------------------------------------------------------------------------


def _entries(oracle, dtype, grads, criterion):
    """[(layer, param, index, tolerance / |value|)] of the non-kink entries meeting `criterion`."""
    jd = oracle.judgement(dtype)
    out = []
    for l, ((gW, gb), (tW, tb), (rW, rb)) in enumerate(zip(grads, jd.tol, jd.radius), start=1):
        for p, g, t, r in (("W", gW, tW, rW), ("b", gb, tb, rb)):
            g64 = np.asarray(g, dtype=np.float64)
            ok = (r == 0) & np.isfinite(g64) & (g64 != 0)
            if criterion == "significant":
                ok &= np.abs(g64) >= SIGNIFICANT * np.broadcast_to(t, g64.shape)
            for idx in zip(*np.nonzero(ok)):
                out.append(
                    (l, p, tuple(int(i) for i in idx), float(np.broadcast_to(t, g64.shape)[idx] / abs(g64[idx])))
                )
    return out


def _perturbed(grads, l, p, idx, rel):
    out = [(np.array(dW), np.array(db)) for dW, db in grads]
    arr = out[l - 1]["Wb".index(p)]
    arr[idx] = arr[idx] * (1 + rel)
    return out


def _caught(case, oracle, grads, l, p, idx, rel):
    """(caught, located): any failure row; a mismatch row naming that layer, param and index."""
    failures, _, _ = judge_gradients(case, oracle, _perturbed(grads, l, p, idx, rel), None)
    failures = [f for f in failures if f.kind not in NOTE_KINDS]  # notes are said, never a failure
    located = any(f.layer == l and f.param == p and tuple(f.index or ()) == idx for f in failures)
    return bool(failures), located


def run_case(draw, impls, rng, oracles=None, ladder=True):
    """Everything measured on one case: a dict of results (see `Tally.add`). `oracles` None:
    the references `check --mode full` uses on this case (verifier.judge.references.full_oracles)."""
    case = strategies.case_from_draw(*draw)
    res = {"draw": draw, "fp": {}, "notes": {}, "ran": [], "ladder": {}, "harness_error": None}
    try:
        oracle = CachedOracle(case, oracles)
    except ReferenceDisagreement as exc:  # check would exit 2 here: count it, go on
        res["harness_error"] = str(exc)
        return res
    got32 = None
    for name, entry in impls.items():
        if not supports(entry, case.spec):
            continue
        with np.errstate(all="ignore"):
            J, grads = entry[0](list(case.params), case.X, case.T, case.spec)
        rows, _, dtype = judge_gradients(case, oracle, grads, float(J))
        failures = [f for f in rows if f.kind not in NOTE_KINDS]  # as check: a note is no failure
        res["notes"][name] = len(rows) - len(failures)
        res["ran"].append(name)
        if failures:
            res["fp"][name] = failures
        if name == "vectorized float32":
            got32 = grads
    if not ladder:
        return res
    ladders = [
        ("float64, significant entry", np.float64, oracle.grads, "significant"),
        ("float64, any nonzero entry", np.float64, oracle.grads, "any"),
    ]
    if got32 is not None:
        ladders.append(("float32, significant entry", np.float32, got32, "significant"))
    for label, dtype, grads, criterion in ladders:
        pool = _entries(oracle, dtype, grads, criterion)
        if not pool:
            res["ladder"][label] = None
            continue
        l, p, idx, rel_tol = pool[int(rng.integers(len(pool)))]
        res["ladder"][label] = ((l, p, idx, rel_tol), [_caught(case, oracle, grads, l, p, idx, rel) for rel in RUNGS])
    return res


class Tally:
    """Counts over all cases."""

    def __init__(self, impls):
        self.n = 0
        self.ran = Counter()
        self.fp_cases = Counter()
        self.fp_kinds = {name: Counter() for name in impls}
        self.fp_regimes = {name: Counter() for name in impls}
        self.fp_examples = []  # (impl, draw, first failure)
        self.notes = Counter()  # impl -> cases with a note (a clipped log, a (1, n) db): said, not failed
        self.regimes, self.depths, self.acts, self.losses = Counter(), Counter(), Counter(), Counter()
        self.eligible, self.caught, self.located = Counter(), {}, {}
        self.by_regime = {}  # label -> regime -> [eligible, caught at 1e-6]
        self.misses = {}  # label -> [(draw, entry, rel_tol)] missed at 1e-6
        self.harness_errors = []  # (draw, message): the references disagreed

    def add(self, res):
        self.n += 1
        spec, batch, regime, seed, layer = res["draw"]
        self.regimes[regime] += 1
        self.depths[len(spec.sizes) - 1] += 1
        self.acts.update(spec.activations)
        self.losses[spec.loss] += 1
        self.ran.update(res["ran"])
        self.notes.update(name for name, n in res["notes"].items() if n)
        if res["harness_error"]:
            self.harness_errors.append((res["draw"], res["harness_error"]))
        for name, failures in res["fp"].items():
            self.fp_cases[name] += 1
            self.fp_kinds[name].update(f.kind for f in failures)
            self.fp_regimes[name][regime] += 1
            naive = name in NAIVE
            if sum((n in NAIVE) == naive for n, _, _ in self.fp_examples) < (3 if naive else 10):
                self.fp_examples.append((name, res["draw"], failures[0]))
        for label, outcome in res["ladder"].items():
            self.caught.setdefault(label, [0] * len(RUNGS))
            self.located.setdefault(label, [0] * len(RUNGS))
            regimes = self.by_regime.setdefault(label, {r: [0, 0] for r in strategies.REGIMES})
            if outcome is None:
                continue
            (l, p, idx, rel_tol), outcome = outcome
            self.eligible[label] += 1
            regimes[regime][0] += 1
            regimes[regime][1] += outcome[RUNGS.index(1e-6)][0]
            if not outcome[RUNGS.index(1e-6)][0] and len(self.misses.setdefault(label, [])) < 10:
                self.misses[label].append((res["draw"], (l, p, idx), rel_tol))
            for i, (c, loc) in enumerate(outcome):
                self.caught[label][i] += c
                self.located[label][i] += loc


# --- output -----------------------------------------------------------------------------------


def table(header, rows):
    """A markdown table (no tabulate here: the report renderer owns that dependency)."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    width = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, width)) + " |"  # noqa: E731
    return "\n".join(
        [line(cells[0]), "|" + "|".join("-" * (w + 2) for w in width) + "|"] + [line(r) for r in cells[1:]]
    )


def _pct(k, n):
    return f"{100 * k / n:.2f}% ({k}/{n})" if n else "n/a"


def repro(draw):
    spec, batch, regime, seed, layer = draw
    return (
        f"strategies.case_from_draw(NetworkSpec({spec.sizes!r}, {spec.activations!r}, {spec.loss!r}), "
        f"{batch}, {regime!r}, {seed}, {layer})"
    )


def render(t, args, seconds, oracles):
    fp_rows = [
        (
            name + (" (naive)" if name in NAIVE else ""),
            IMPL_NOTES[name],
            t.ran[name],
            t.fp_cases[name],
            ", ".join(f"{k} {v}" for k, v in sorted(t.fp_regimes[name].items())) or "-",
            ", ".join(f"{k} {v}" for k, v in t.fp_kinds[name].items()) or "-",
            t.notes[name],
        )
        for name in t.fp_kinds
    ]
    ladder_rows = []
    for i, rel in enumerate(RUNGS):
        row = [f"{rel:.0e}"]
        for label in t.caught:
            row.append(_pct(t.caught[label][i], t.eligible[label]))
        ladder_rows.append(row)
    located_ok = all(t.located[k] == t.caught[k] for k in t.caught)
    cmd = f"python benchmarks/detection_ladder.py --cases {args.cases} --seed {args.seed} --source {args.source}"
    if args.max_width != 6 or args.max_depth != 4 or args.max_batch != 5:
        cmd += f" --max-depth {args.max_depth} --max-width {args.max_width} --max-batch {args.max_batch}"
    if oracles is not None:
        cmd += " --oracles " + ",".join(oracles)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    out = [
        "# Detection ladder: false positives and the smallest error caught",
        "",
        f"Command: `{cmd}`  ",
        f"Cases: {t.n}, seed {args.seed}, source `{args.source}` "
        f"(depth 1..{args.max_depth}, widths 1..{args.max_width}, batch 1..{args.max_batch}), "
        f"every regime.  ",
        f"Time: {seconds:.1f} s wall ({1000 * seconds / max(t.n, 1):.1f} ms per case) on "
        f"{os.cpu_count()} cores"
        + (f", load average {load[0]:.2f} at the end" if load else "")
        + (" (other jobs were sharing the machine)" if load and load[0] > (os.cpu_count() or 1) else "")
        + f"; Python {platform.python_version()}, numpy {np.__version__}.  ",
        (
            f"Oracle: `verifier.judge.oracle.Oracle(case, oracles={tuple(oracles)!r})`."
            if oracles is not None
            else "Oracle: `verifier.judge.oracle.Oracle(case)`, exactly the references `check --mode full` uses on each "
            "case (`verifier.judge.references.full_oracles`: the delta rule and the complex step, and JAX "
            "reverse mode on networks of its smallest shape bucket), cross-checked entry by entry and by loss "
            "value before anything is judged; the gradients judged against are the delta rule's."
        ),
        "",
        f"References disagreeing (a harness error: `check` would exit 2 on the case): "
        f"{len(t.harness_errors)} of {t.n} cases." + "".join(f"\n- `{repro(d)}`: {m}" for d, m in t.harness_errors[:5]),
        "",
        "Judgement: `verifier.judge.full.judge_gradients(case, oracle, grads, loss)`, the judgement `check` "
        "applies to each call's result (gradients and, here, the returned loss value too), run "
        "in-process instead of in the sandbox. The error model's tolerances are computed once per "
        "case and dtype and reused (`CachedOracle`); they are the same numbers.",
        "",
        "Regimes: "
        + ", ".join(f"{k} {v}" for k, v in sorted(t.regimes.items()))
        + ". Depths: "
        + ", ".join(f"{k}: {v}" for k, v in sorted(t.depths.items()))
        + ". Losses: "
        + ", ".join(f"{k} {v}" for k, v in sorted(t.losses.items()))
        + ". Activations (layers): "
        + ", ".join(f"{k} {v}" for k, v in sorted(t.acts.items()))
        + ".",
        "",
        "## False positives (correct implementations failed)",
        "",
        "A false positive is a case where a correct implementation gets any failure row "
        "(gradient mismatch, nonfinite entry, loss mismatch). Requirement: zero, for every row but "
        "the two *naive* ones. Those compute each formula as written, nothing fused. The cases keep "
        "a bce or softmax_ce output strictly inside (0, 1) (|z| <= 15), so their gradients stay "
        "finite, but near saturation log(1 - y) of a y close to 1 keeps only a few digits and the "
        "loss value they return is really off, which `check` fails; they are here to show that none "
        "of their failures is a gradient mismatch.",
        "",
        table(
            ["implementation", "what", "cases", "false positives", "by regime", "failure rows", "cases with a note"],
            fp_rows,
        ),
        "",
    ]
    if t.fp_examples:
        out += ["Reproductions (first few):", ""]
        for name, draw, f in sorted(t.fp_examples, key=lambda e: e[0] in NAIVE):
            out.append(
                f"- {name}: `{repro(draw)}`: {f.kind} layer {f.layer} {f.param} {f.index}: "
                f"got {f.got!r}, expected {f.expected!r}, tolerance {f.tolerance!r}"
            )
        out.append("")
    out += [
        "## Detection ladder",
        "",
        "In each case one gradient entry is multiplied by (1 + rel) and the result judged as above "
        "(no loss value). The entry is drawn at random (seeded) among:",
        "",
        f"- *significant*: entries away from any kink (kink-interval radius 0) with |g| >= {SIGNIFICANT:g} "
        "times their tolerance, i.e. known to at least three digits beyond the judge's tolerance. "
        "Rungs 1e-2 and 1e-3 are therefore caught by construction; the rungs below show how far "
        "under 1e-3 the per-entry tolerances reach;",
        "- *any nonzero*: every non-kink entry with g != 0, including entries that are the "
        "cancellation of much larger terms (their value is mostly rounding, no judge can resolve a "
        "relative 1e-6 of it);",
        "- *float32*: the float32 implementation's own gradient (already off by its rounding), "
        "judged with float32 tolerances, entry drawn among its significant entries.",
        "",
        "Cases with a perturbable entry: "
        + "; ".join(f"{label}: {_pct(t.eligible[label], t.n)}" for label in t.caught)
        + ".",
        "",
        table(["rel error"] + [f"caught: {label}" for label in t.caught], ladder_rows),
        "",
        "The 1e-6 rung by regime (cases with a perturbable entry, caught):",
        "",
        table(
            ["regime"] + list(t.caught),
            [[r] + [_pct(t.by_regime[k][r][1], t.by_regime[k][r][0]) for k in t.caught] for r in strategies.REGIMES],
        ),
        "",
        "Perturbable entries per regime: "
        + "; ".join(
            f"{r} {_pct(t.by_regime[k][r][0], t.regimes[r])}" for k in list(t.caught)[:1] for r in strategies.REGIMES
        )
        + " (float64, significant).",
        "",
        (
            "Every caught perturbation was reported at the perturbed layer, parameter and index."
            if located_ok
            else "Some caught perturbations were NOT reported at the perturbed entry: "
            + "; ".join(f"{k}: located {t.located[k]} vs caught {t.caught[k]}" for k in t.caught)
        ),
        "",
    ]
    label = next(iter(t.caught), None)
    if t.misses.get(label):
        out += [
            f"Missed at 1e-6 ({label}; first few), with the entry's relative tolerance "
            "(tolerance / |g|): each is an entry whose tolerance exceeds 1e-6 of its value.",
            "",
        ]
        for draw, (l, p, idx), rel_tol in t.misses[label]:
            out.append(f"- `{repro(draw)}`: layer {l} d{p}{list(idx)}, tolerance/|g| = {rel_tol:.2e}")
        out.append("")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--source",
        choices=("hypothesis", "uniform"),
        default="hypothesis",
        help="hypothesis: strategies.explore over the draws cases() makes (as check does); "
        "uniform: every choice uniform",
    )
    ap.add_argument("--max-depth", type=int, default=4)
    ap.add_argument("--max-width", type=int, default=6)
    ap.add_argument("--max-batch", type=int, default=5)
    ap.add_argument(
        "--oracles", default=None, help="comma-separated references, first is the oracle (default: what check uses)"
    )
    ap.add_argument("--output", default=str(ROOT / "reports" / "detection_ladder.md"), help="'-' for none")
    args = ap.parse_args(argv)
    oracles = tuple(args.oracles.split(",")) if args.oracles else None
    impls = implementations()
    tally = Tally(impls)
    start = time.perf_counter()
    last = [start]

    def body(draw):
        rng = np.random.default_rng([args.seed, tally.n])
        tally.add(run_case(draw, impls, rng, oracles))
        now = time.perf_counter()
        if now - last[0] > 10 or tally.n == args.cases:
            last[0] = now
            fps = sum(v for k, v in tally.fp_cases.items() if k not in NAIVE)
            print(
                f"  {tally.n}/{args.cases} cases, {now - start:.0f} s, false positives so far: {fps} (naive rows not counted)",
                file=sys.stderr,
                flush=True,
            )

    kw = dict(max_depth=args.max_depth, max_width=args.max_width, max_batch=args.max_batch)
    if args.source == "hypothesis":
        exc = strategies.explore(draws(**kw), body, examples=args.cases, seed=args.seed, shrink=False)
        if exc is not None:
            raise exc
    else:
        for draw in uniform_draws(args.cases, args.seed, **kw):
            body(draw)
    seconds = time.perf_counter() - start
    text = render(tally, args, seconds, oracles)
    print(text)
    if args.output != "-":
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
        print(f"wrote {os.path.relpath(args.output, ROOT)}", file=sys.stderr)
    bad = tally.harness_errors or any(tally.fp_cases[name] for name in impls if name not in NAIVE)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
