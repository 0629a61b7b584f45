"""The main job: each example bug exits 1 with the right layer and label; each correct example
exits 0, on 200 generated cases."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from verifier import casefile, cli
from verifier.run.check import run_check

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

BUGS = {
    "bug_forgot_factor_2": ("scale", "1/2"),
    "bug_mean_instead_of_sum": ("batch_reduction", "1/B"),
    "bug_missing_activation_derivative": ("activation_derivative", "h' missing"),
    "bug_sign_flip": ("sign", "wrong sign"),
}


@pytest.mark.parametrize("name", sorted(BUGS))
def test_example_bug_fails_with_its_label(name, tmp_path, capsys):
    code = cli.main(
        ["check", str(EXAMPLES / f"{name}.py"), "--examples", "200", "--format", "json", "--cases-dir", str(tmp_path)]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["verdict"] == "fail"
    label, words = BUGS[name]
    first = report["failures"][0]
    assert first["kind"] == "mismatch" and first["diagnosis"] == label and words in first["detail"]
    assert first["layer"] == 1 and first["param"] in ("W", "b")
    if name == "bug_missing_activation_derivative":  # right at the output, wrong below it
        assert first["case"]["sizes"].__len__() == 3
        assert all(f["layer"] == 1 for f in report["failures"])
    # the minimal case replays: exactly that case, the same failure
    assert first["case_file"] and first["replay"].startswith("backprop-verify check ")
    again = cli.main(["check", str(EXAMPLES / f"{name}.py"), "--case", first["case_file"], "--format", "json"])
    replayed = json.loads(capsys.readouterr().out)
    assert again == 1 and replayed["examples"] == 1 and replayed["failures"][0]["layer"] == first["layer"]


@pytest.mark.parametrize("name", ["correct_vectorized", "correct_loops"])
def test_correct_example_passes_200_cases(name, capsys):
    code = cli.main(["check", str(EXAMPLES / f"{name}.py"), "--examples", "200", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["verdict"] == "pass" and report["examples"] == 200
    assert report["failures"] == [] and report["references"] == ["delta_rule", "complex_step"]


def test_a_default_check_imports_no_jax_and_jax_joins_when_asked():
    """JAX is off the default path (its import and compile cost more than 200 cases); --jax makes
    it a third reference, imported in the background while the run starts."""
    code = (
        "import sys\n"
        "from verifier.run.check import run_check\n"
        "impl, jax = sys.argv[1], sys.argv[2] == 'jax'\n"
        "r = run_check(impl, examples=5, jax=jax)\n"
        "print(r.verdict, ','.join(r.references), 'jax' in sys.modules)\n"
    )
    impl = str(EXAMPLES / "correct_vectorized.py")
    run = lambda *a: subprocess.run([sys.executable, "-c", code, impl, *a], capture_output=True, text=True, check=True)  # noqa: E731
    assert run("nojax").stdout.split() == ["pass", "delta_rule,complex_step", "False"]
    assert run("jax").stdout.split() == ["pass", "delta_rule,complex_step,jax_reverse", "True"]


def test_homework_network_is_pinned():
    r = run_check(
        str(EXAMPLES / "correct_loops.py"),
        examples=20,
        sizes=(2, 2, 1),
        layer_activations=("sigmoid", "sigmoid"),
        loss="mse",
        batch=1,
    )
    assert r.verdict == "pass" and r.examples == 20
    assert [t.compared for t in r.tensors if t.layer == 1 and t.param == "W"] == [80]


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--sizes", "2,3,1", "--activations", "relu", "tanh"], "the pinned network uses activation relu"),
        (["--case", str(EXAMPLES.parent / "reports" / "examples" / "worked_example.json")], "the case uses loss mse"),
    ],
    ids=["pinned-activation", "case-file-loss"],
)
def test_network_the_implementation_does_not_support_is_a_usage_error(argv, words, capsys):
    # bug_sign_flip declares sigmoid/tanh and sse only: checking it elsewhere would blame it
    # for a network it never claimed to handle
    code = cli.main(["check", str(EXAMPLES / "bug_sign_flip.py"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and words in err and "SUPPORTED_" in err


def test_pinned_network_within_what_is_supported_runs(tmp_path, capsys):
    code = cli.main(
        [
            "check",
            str(EXAMPLES / "bug_sign_flip.py"),
            "--sizes",
            "2,3,1",
            "--activations",
            "tanh",
            "sigmoid",
            "--examples",
            "5",
            "--format",
            "json",
            "--cases-dir",
            str(tmp_path),
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["failures"][0]["case"]["activations"] == ["tanh", "sigmoid"]


def test_worked_example_case_file(tmp_path):
    path = casefile.save(casefile.from_dict(casefile.WORKED_EXAMPLE), tmp_path / "worked.json")
    r = run_check(str(EXAMPLES / "correct_loops.py"), case=casefile.load(path))
    assert r.verdict == "pass" and r.examples == 1


def test_loss_value_is_checked(tmp_path):
    impl = tmp_path / "wrong_loss.py"
    impl.write_text(
        (EXAMPLES / "correct_vectorized.py").read_text().replace("return J, grads[::-1]", "return 1.5 * J, grads[::-1]")
    )
    r = run_check(str(impl), examples=30)
    assert r.verdict == "fail" and any(f.kind == "loss_mismatch" for f in r.failures)


def test_train_step_with_the_wrong_sign_is_named(tmp_path):
    impl = tmp_path / "uphill.py"
    impl.write_text(
        (EXAMPLES / "correct_vectorized.py")
        .read_text()
        .replace("(W - lr * dW, b - lr * db)", "(W + lr * dW, b + lr * db)")
    )
    r = run_check(str(impl), examples=30)
    rows = [f for f in r.failures if f.kind == "update_mismatch"]
    assert r.verdict == "fail" and rows and rows[0].diagnosis == "sign" and "wrong sign" in rows[0].detail


def test_in_out_layout_is_transposed_on_the_way_in_and_out(tmp_path):
    impl = tmp_path / "in_out.py"
    impl.write_text(
        (EXAMPLES / "correct_vectorized.py")
        .read_text()
        .replace("Zs.append(As[-1] @ W.T + b)", "Zs.append(As[-1] @ W + b)")
        .replace(
            "grads.append((delta.T @ As[l], delta.sum(axis=0)))", "grads.append((As[l].T @ delta, delta.sum(axis=0)))"
        )
        .replace("delta = (delta @ params[l][0])", "delta = (delta @ params[l][0].T)")
        + '\nLAYOUT = "in_out"\n'
    )
    r = run_check(str(impl), examples=40)
    assert r.verdict == "pass", [f.detail for f in r.failures]


def test_float32_implementation_is_judged_to_float32(tmp_path):
    os.chmod(tmp_path, 0o755)  # run by root, the child's own uid must be able to read its helper
    impl = tmp_path / "f32.py"
    impl.write_text(
        "import numpy as np\nfrom correct_vectorized import gradients as g64\n"
        "def gradients(params, X, T, spec):\n"
        "    f = lambda a: np.asarray(a, np.float32)\n"
        "    J, grads = g64([(f(W), f(b)) for W, b in params], f(X), f(T), spec)\n"
        "    return [(f(a), f(b)) for a, b in grads]\n"
    )
    (tmp_path / "correct_vectorized.py").write_text((EXAMPLES / "correct_vectorized.py").read_text())
    r = run_check(str(impl), examples=100)
    assert r.verdict == "pass" and r.dtype == "float32", [f.detail for f in r.failures]


def test_unknown_implementation_is_a_harness_error(tmp_path, capsys):
    assert cli.main(["check", str(tmp_path / "missing.py")]) == 2
    assert "error" in capsys.readouterr().err
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    assert cli.main(["check", str(empty)]) == 2
    assert "gradients" in capsys.readouterr().err


CORRECT = (EXAMPLES / "correct_vectorized.py").read_text()
HOSTILE = {
    "raises": ("def gradients(params, X, T, spec):\n    raise ValueError('planted')\n", "exception"),
    "hangs": ("def gradients(params, X, T, spec):\n    while True:\n        pass\n", "timeout"),
    "exits": ("import os\ndef gradients(params, X, T, spec):\n    os._exit(3)\n", "exited"),
    "floods output": ("def gradients(params, X, T, spec):\n    while True:\n        print('x' * 1000)\n", "timeout"),
    "eats memory": ("def gradients(params, X, T, spec):\n    return bytearray(50 * 2**30)\n", "exception"),
    "returns NaN": (
        CORRECT.replace("return J, grads[::-1]", "return J, [(a * np.nan, b) for a, b in grads[::-1]]"),
        "nonfinite",
    ),
    "wrong shapes": (
        CORRECT.replace("return J, grads[::-1]", "return J, [(a[:, :1], b) for a, b in grads[::-1]]"),
        "bad_output",
    ),
    "returns a string": ("def gradients(params, X, T, spec):\n    return 'gradients'\n", "bad_output"),
    "mutates X": (
        CORRECT.replace(
            "    Zs, As = [], [X]", "    X.flags.writeable = True\n    X *= 1.0000001\n    Zs, As = [], [X]"
        ),
        "mutated_input",
    ),
    "wrong and tampers with numpy": (
        CORRECT.replace(
            "return J, grads[::-1]",
            "np.allclose = lambda *a, **k: True\n    np.testing.assert_allclose = lambda *a, **k: None\n    np.abs = lambda a: a * 0\n    return J, [(-a, -b) for a, b in grads[::-1]]",
        ),
        "mismatch",
    ),
    "wrong and tampers with the harness": (
        "import sys, os\n"
        + CORRECT.replace(
            "return J, grads[::-1]",
            "for m in list(sys.modules.values()):\n        for k in ('judge', 'compare', 'send', 'reply'):\n            if hasattr(m, k):\n                try: setattr(m, k, None)\n                except Exception: pass\n    try: os.kill(os.getppid(), 9)\n    except Exception: pass\n    return J, [(2 * a, 2 * b) for a, b in grads[::-1]]",
        ),
        "mismatch",
    ),
}


@pytest.mark.parametrize("source,kind", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_implementation_becomes_its_row(source, kind, tmp_path, capsys):
    import os

    if "os.kill(os.getppid()" in source and os.geteuid() != 0:
        pytest.skip("the child can signal the harness unless the harness is root (privilege drop)")
    impl = tmp_path / "hostile.py"
    impl.write_text(source)
    code = cli.main(
        ["check", str(impl), "--examples", "4", "--timeout", "2", "--format", "json", "--cases-dir", str(tmp_path)]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["verdict"] == "fail"
    assert kind in {f["kind"] for f in report["failures"]}, report["failures"][:2]


def test_a_crash_on_some_cases_changes_no_other_verdict(tmp_path):
    """Crashes on batch 3 only; every other case is judged as if nothing happened."""
    impl = tmp_path / "flaky.py"
    impl.write_text(
        CORRECT.replace(
            "    Zs, As = [], [X]", "    if len(X) == 3:\n        import os; os._exit(1)\n    Zs, As = [], [X]"
        )
    )
    r = run_check(str(impl), examples=40, timeout=5)
    kinds = {f.kind for f in r.failures}
    assert kinds == {"exited"} and all(f.case["batch"] == 3 for f in r.failures)
    assert all(t.failed == 0 for t in r.tensors)


def test_tampering_with_numpy_changes_no_verdict_of_a_correct_implementation(tmp_path):
    impl = tmp_path / "tamper_ok.py"
    impl.write_text(
        CORRECT.replace(
            "    Zs, As = [], [X]", "    np.isfinite = lambda a: False\n    np.asarray = None\n    Zs, As = [], [X]"
        )
    )
    assert run_check(str(impl), examples=30).verdict == "pass"


# --- the references full mode judges against (verifier/references.py: full_oracles) -------


def _big_case(acts=("tanh", "sigmoid", "tanh"), loss="sse"):
    from verifier.records import NetworkSpec
    from verifier.strategies import case_from_draw

    return case_from_draw(NetworkSpec((24, 32, 20, 5), acts, loss), 8, "normal", 3)


def test_a_big_network_is_judged_by_the_delta_rule_and_the_complex_step(tmp_path):
    big = _big_case()  # what bug_forgot_factor_2.py supports
    ok = run_check(str(EXAMPLES / "correct_vectorized.py"), case=big)
    assert ok.verdict == "pass" and ok.references == ("delta_rule", "complex_step")
    assert sum(t.compared for t in ok.tensors) == sum(W.size + b.size for W, b in big.params)
    bug = run_check(str(EXAMPLES / "bug_forgot_factor_2.py"), case=big, cases_dir=str(tmp_path))
    rows = [f for f in bug.failures if f.kind == "mismatch"]
    assert bug.verdict == "fail" and {f.layer for f in rows} == {1, 2, 3}
    assert rows[0].diagnosis == "scale" and "1/2" in rows[0].detail


@pytest.mark.parametrize("name", ["complex_step", "jax_reverse"])
def test_a_planted_wrong_reference_is_a_harness_error_never_the_users(name, monkeypatch):
    """One reference with layer 1's db off by 1e-6 relative: the oracle refuses to judge."""
    from verifier.errors import ReferenceDisagreement
    from verifier.judge import references
    from verifier.judge.oracle import Oracle

    def planted(right):
        def wrong(case):
            out = right(case)
            (dW, db), *rest = out.grads
            return out._replace(grads=[(dW, db * (1 + 1e-6) + 1e-9), *rest])

        return wrong

    monkeypatch.setitem(references.REFERENCES, name, planted(references.REFERENCES[name]))
    if name in references.BY_LAYER:  # the oracle's layer-at-a-time form of the same reference
        monkeypatch.setitem(references.BY_LAYER, name, planted(references.BY_LAYER[name]))
    small = casefile.from_dict(casefile.WORKED_EXAMPLE)
    jax = name == "jax_reverse"  # a third reference only when asked for (check --jax)
    with pytest.raises(ReferenceDisagreement, match=f"delta_rule and {name} disagree at layer 1 b"):
        Oracle(small, references.full_oracles(small, jax=jax))
    flags = ["--jax"] if jax else []
    assert cli.main(["check", str(EXAMPLES / "correct_loops.py"), "--case", str(_saved(small)), *flags]) == 2


def test_a_planted_wrong_loss_value_of_the_jax_forward_is_a_harness_error(monkeypatch):
    from verifier.errors import ReferenceDisagreement
    from verifier.judge import references
    from verifier.judge.oracle import Oracle

    right = references.REFERENCES["jax_reverse"]
    monkeypatch.setitem(
        references.REFERENCES, "jax_reverse", lambda c: right(c)._replace(loss=right(c).loss * (1 + 1e-9))
    )
    worked = casefile.from_dict(casefile.WORKED_EXAMPLE)
    with pytest.raises(ReferenceDisagreement, match="loss values differ: delta_rule .*, jax_reverse"):
        Oracle(worked, references.full_oracles(worked, jax=True))
    Oracle(worked)  # JAX is not asked for by default: nothing to disagree with
    big = _big_case()
    Oracle(big, references.full_oracles(big, jax=True))  # no jax on a big network, even when asked


def _saved(case):
    import tempfile

    return casefile.save(case, Path(tempfile.mkdtemp()) / "case.json")


# --- leaky_relu:SLOPE: the slope reaches the user's spec and every reference ----------------

_LEAKY = (
    (ROOT / "examples" / "correct_vectorized.py")
    .read_text()
    .replace('if name == "leaky_relu"', 'if name.startswith("leaky_relu")')
)


def _leaky(tmp_path, own_slope: bool):
    text = _LEAKY
    if own_slope:  # the slope read from the name, as the spec gives it
        text = text.replace("0.01", "_slope(name)") + (
            "\n\ndef _slope(name):\n    return float(name.split(':')[1]) if ':' in name else 0.01\n"
        )
    impl = tmp_path / "leaky.py"
    impl.write_text(text)
    return impl


def test_a_leaky_slope_of_the_name_passes(tmp_path):
    r = run_check(str(_leaky(tmp_path, True)), examples=20, activations=("leaky_relu:0.2", "identity"))
    assert r.verdict == "pass"


def test_code_that_keeps_0_01_fails_when_the_slope_is_0_2(tmp_path):
    r = run_check(str(_leaky(tmp_path, False)), examples=20, activations=("leaky_relu:0.2", "identity"))
    assert r.verdict == "fail" and r.failures[0].kind == "mismatch"
    assert "leaky_relu:0.2" in r.failures[0].case["activations"]


def test_a_bad_slope_on_the_command_line_says_the_fix(capsys):
    from verifier import cli

    code = cli.main(["check", str(ROOT / "examples" / "correct_vectorized.py"), "--activations", "leaky_relu:-2"])
    assert code == 2 and "the slope after ':' must be a number >= 0" in capsys.readouterr().err


MIXED = (
    "import numpy as np\nfrom correct_vectorized import gradients as g64\n"
    "def gradients(params, X, T, spec):\n"
    "    J, grads = g64(params, X, T, spec)\n"
    "    grads = [list(p) for p in grads]\n"
    "    grads[0][0] = grads[0][0].astype(np.float16)  # one tensor in float16\n"
    "    grads[-1][1] = grads[-1][1] * FACTOR  # the last bias, float64\n"
    "    return J, [tuple(p) for p in grads]\n"
)


def _mixed(tmp_path, factor):
    os.chmod(tmp_path, 0o755)  # run as root, the child imports its helper with its own uid
    impl = tmp_path / "mixed.py"
    impl.write_text(MIXED.replace("FACTOR", repr(factor)))
    (tmp_path / "correct_vectorized.py").write_text((EXAMPLES / "correct_vectorized.py").read_text())
    return run_check(str(impl), examples=15, sizes=(3, 4, 2), activations=("tanh", "sigmoid"), loss="sse")


def test_a_float16_tensor_does_not_let_a_5_percent_error_in_a_float64_one_pass(tmp_path):
    r = _mixed(tmp_path, 1.05)
    assert r.verdict == "fail"
    assert {(f.kind, f.layer, f.param) for f in r.failures} == {("mismatch", 2, "b")}


def test_a_mixed_precision_return_passes_and_says_so_in_every_format(tmp_path):
    from verifier.report import FORMATS, render
    from verifier.run.grading import with_grading

    r = _mixed(tmp_path, 1.0)
    assert r.verdict == "pass" and r.dtype == "float16", [f.detail for f in r.failures]
    assert {t.dtype for t in r.tensors if (t.layer, t.param) != (1, "W")} == {"float64"}
    assert r.notes[-1].startswith("mixed precision: the gradients came back in 2 dtypes (float16: layer 1 W;")
    graded = with_grading(r)
    for fmt in FORMATS:
        assert "mixed precision" in render(graded, fmt), fmt


# The loss value crosses from the child with its own dtype and is judged to it: a float16 tensor
# does not loosen a float64 loss's tolerance; a loss returned as float32 is allowed float32's.
LOSS_OF_DTYPE = (
    "import numpy as np\nfrom correct_vectorized import gradients as g64\n"
    "def gradients(params, X, T, spec):\n"
    "    J, grads = g64(params, X, T, spec)\n"
    "    grads = [list(p) for p in grads]\n"
    "    grads[0][0] = grads[0][0].astype(np.float16)  # one tensor in float16\n"
    "    return LOSS, [tuple(p) for p in grads]\n"
)
LOSSES = {
    "loss_off": "J * (1 + 1e-3)",  # a float64 loss 1e-3 off: inside float16's tolerance only
    "loss_exact": "J",
    "loss_float32": "np.float32(J)",  # right to float32: judged to float32, not to float64
}


def _loss_impl(tmp_path, name):
    os.chmod(tmp_path, 0o755)
    (tmp_path / "correct_vectorized.py").write_text((EXAMPLES / "correct_vectorized.py").read_text())
    impl = tmp_path / f"{name}.py"
    source = LOSS_OF_DTYPE.replace("LOSS", LOSSES[name])
    if name == "loss_float32":
        source = source.replace("grads[0][0] = grads[0][0].astype(np.float16)", "pass")
    impl.write_text(source)
    return str(impl)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_the_loss_value_is_judged_to_its_own_dtype(tmp_path, name):
    r = run_check(_loss_impl(tmp_path, name), examples=15, sizes=(3, 4, 2), activations=("tanh", "sigmoid"), loss="sse")
    if name == "loss_off":
        assert r.verdict == "fail" and {f.kind for f in r.failures} == {"loss_mismatch"}, r.failures
        assert "the gradients of this case are right" in r.failures[0].detail
    else:
        assert r.verdict == "pass", [f.detail for f in r.failures]


# --- the same, with the harness run by an ordinary user (tests/users.py) ----------------------


@pytest.fixture(scope="module")
def mixed_as_user():
    from users import Runner, snapshot

    runner = Runner("user")
    try:
        left_before = runner.leftovers()
        outside = runner.outside()
        outside_before = snapshot(outside)
        runner.write("correct_vectorized.py", (EXAMPLES / "correct_vectorized.py").read_text())
        options = ["--examples", "15", "--sizes", "3,4,2", "--activations", "tanh", "sigmoid", "--loss", "sse"]
        runs = {}
        for name, factor in (("mixed_bad", 1.05), ("mixed_ok", 1.0)):
            runner.write(name + ".py", MIXED.replace("FACTOR", repr(factor)))
            runs[name] = ["check", name + ".py", *options, "--format", "json", "--cases-dir", "cases"]
        runner.write("loss_off.py", LOSS_OF_DTYPE.replace("LOSS", LOSSES["loss_off"]))
        runs["loss_off"] = ["check", "loss_off.py", *options, "--format", "json", "--cases-dir", "cases"]
        done = dict(zip(runs, runner.cli(list(runs.values()))))
        yield {
            "runs": done,
            "outside_changed": snapshot(outside) != outside_before,
            "left": runner.leftovers() - left_before,
        }
    finally:
        runner.cleanup()


def test_as_an_ordinary_user_a_float16_tensor_does_not_loosen_a_float64_ones_tolerance(mixed_as_user):
    bad, ok = mixed_as_user["runs"]["mixed_bad"], mixed_as_user["runs"]["mixed_ok"]
    assert bad["code"] == 1 and bad["seconds"] < 30, bad
    report = json.loads(bad["out"])
    assert {(f["kind"], f["layer"], f["param"]) for f in report["failures"]} == {("mismatch", 2, "b")}
    assert ok["code"] == 0 and ok["seconds"] < 30, ok  # the twin
    assert "mixed precision: the gradients came back in 2 dtypes" in ok["out"]
    loss = mixed_as_user["runs"]["loss_off"]  # nor a float64 loss value's
    assert loss["code"] == 1 and loss["seconds"] < 30, loss
    assert {f["kind"] for f in json.loads(loss["out"])["failures"]} == {"loss_mismatch"}
    assert not mixed_as_user["outside_changed"] and not mixed_as_user["left"], mixed_as_user["left"]


@pytest.mark.parametrize(
    "subject, act, mode",
    [
        (ROOT / "benchmarks" / "subject_correct.py", "tanh", "full"),
        (EXAMPLES / "correct_vectorized.py", "tanh", "full"),  # with a train_step, judged too
        (EXAMPLES / "correct_vectorized.py", "relu", "full"),  # kink intervals
        (ROOT / "benchmarks" / "subject_correct.py", "tanh", "fast"),  # directions drawn by blocks
    ],
    ids=["gradients", "train_step", "relu-train_step", "fast"],
)
def test_a_big_network_is_checked_holding_at_most_three_parameter_sized_arrays(tmp_path, subject, act, mode):
    """The check of a 2048-2048-2048-10 network (64 MB of float64 parameters), traced by
    tracemalloc in a process of its own after a small check has imported everything: the
    harness holds at most the parameters, the reference gradients and one reply of the user's
    (its gradients, then its train_step's parameters) at once, 3 copies, plus a working set of
    blocks that does not grow with the network (compare.BLOCK: a few 2 MB arrays). The
    tolerances, kink intervals and W - lr dW are kept as thin factors (judge/lazy.py); fast
    mode's random directions are drawn a row block at a time (fast.Directions)."""
    code = (
        "import tracemalloc, sys\n"
        "from verifier.run.check import run_check\n"
        "kw = dict(batch=16, examples=1, shrink=False, layer_activations=(sys.argv[3], sys.argv[3], 'identity'),\n"
        "          loss='sse', cases_dir=sys.argv[2], mode=sys.argv[4])\n"
        "run_check(sys.argv[1], sizes=(4, 4, 4, 2), **kw)\n"
        "tracemalloc.start()\n"
        "before = tracemalloc.get_traced_memory()[0]\n"
        "r = run_check(sys.argv[1], sizes=(2048, 2048, 2048, 10), **kw)\n"
        "print(r.verdict, tracemalloc.get_traced_memory()[1] - before)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(subject), str(tmp_path), act, mode], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    verdict, held = out.stdout.split()
    params = 8 * (2048 * 2049 * 2 + 10 * 2049)
    assert verdict == "pass"
    assert int(held) <= 3 * params + 32 * 2**20, int(held) / params


@pytest.mark.parametrize("name", [*sorted(BUGS), "correct_vectorized", "uphill"])
def test_lazy_tolerances_and_steps_judge_as_plain_arrays_do(name, monkeypatch, tmp_path):
    """Every tolerance, kink interval and train_step target kept lazy, as a big network's are
    (lazy.LAZY_MIN = 1): the same verdict, rows and labels as plain arrays give, on the planted
    bugs, a train_step that steps uphill, and their correct twin."""
    from verifier.judge import lazy

    impl = EXAMPLES / f"{name}.py"
    if name == "uphill":
        impl = tmp_path / "uphill.py"
        impl.write_text(
            (EXAMPLES / "correct_vectorized.py")
            .read_text()
            .replace("(W - lr * dW, b - lr * db)", "(W + lr * dW, b + lr * db)")
        )
    plain = run_check(str(impl), examples=40, cases_dir=str(tmp_path))
    monkeypatch.setattr(lazy, "LAZY_MIN", 1)
    kept = run_check(str(impl), examples=40, cases_dir=str(tmp_path))
    rows = [[(f.kind, f.diagnosis, f.layer, f.param) for f in r.failures] for r in (plain, kept)]
    assert kept.verdict == plain.verdict == ("pass" if name.startswith("correct") else "fail")
    assert rows[0] == rows[1]
    if name in BUGS:
        assert rows[1][0][:2] == ("mismatch", BUGS[name][0])
    if name == "uphill":
        assert ("update_mismatch", "sign") in [r[:2] for r in rows[1]]
