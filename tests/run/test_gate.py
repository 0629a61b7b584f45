"""The CI gate: a baseline from a correct float64 implementation; the same file passes, a copy
computing in float32 inside fails as a precision regression, a sign bug fails as a mismatch.

The judging rules (floor, factor, non-finite figures) are tested on records, without a check.
"""

import json
import math
import os

import pytest
from conftest import EXAMPLES

from verifier import cli, safe_io
from verifier.errors import SpecError
from verifier.records import CheckResult, Failure, TensorVerdict
from verifier.run import gate

# small and pinned, so that each gate run takes seconds
OPTIONS = ["--examples", "15", "--sizes", "3,4,2", "--activations", "tanh", "sigmoid", "--loss", "sse"]

FLOAT32_INSIDE = '''

_gradients32 = gradients


def gradients(params, X, T, spec):
    """float32 inside, float64 outside: the lost precision does not show in the dtype."""
    _, grads = _gradients32(params, X, T, spec)
    return [(dW.astype(np.float64), db.astype(np.float64)) for dW, db in grads]
'''


def gate_run(tmp, impl_source, *args):
    """(exit code, JSON report, stderr) of `gate impl.py ...` run on `impl_source` in `tmp`."""
    tmp.mkdir(exist_ok=True)
    (tmp / "impl.py").write_text(impl_source)
    out = tmp / "report.json"
    argv = [
        "gate",
        str(tmp / "impl.py"),
        "--format",
        "json",
        "--output",
        str(out),
        "--cases-dir",
        str(tmp / "cases"),
        *args,
    ]
    code = cli.main(argv)
    return code, (json.loads(out.read_text()) if out.exists() else None)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gate")
    path = tmp / "baseline.json"
    code, report = gate_run(
        tmp / "correct",
        (EXAMPLES / "correct_vectorized.py").read_text(),
        "--baseline",
        str(path),
        "--update",
        "--quiet",
        *OPTIONS,
    )
    assert code == 0, report
    return path


def kinds(report):
    return [f["kind"] for f in report["failures"]]


def test_the_baseline_records_the_configuration_and_per_tensor_errors(baseline):
    data = json.loads(baseline.read_text())
    assert data["name"] == "impl" and data["dtype"] == "float64" and data["examples"] == 15
    assert data["config"] == {
        "examples": 15,
        "seed": 0,
        "sizes": [3, 4, 2],
        "activations": ["tanh", "sigmoid"],
        "loss": "sse",
        "batch": None,
    }
    assert [(t["layer"], t["param"]) for t in data["tensors"]] == [(1, "W"), (1, "b"), (2, "W"), (2, "b")]
    assert all(0 <= t["max_rel"] < 1e-6 and t["max_abs"] < 1e-12 for t in data["tensors"])


def test_the_same_implementation_passes_and_writes_every_report(baseline, tmp_path, capsys):
    md, xml = tmp_path / "gate.md", tmp_path / "gate.xml"
    code, report = gate_run(
        tmp_path,
        (EXAMPLES / "correct_vectorized.py").read_text(),
        "--baseline",
        str(baseline),
        "--markdown",
        str(md),
        "--junit",
        str(xml),
        "--verbose",
    )
    assert code == 0 and report["verdict"] == "pass" and report["failures"] == []
    assert report["seed"] == 0 and report["examples"] == 15  # the baseline's configuration
    assert [t["ratio"] for t in report["extra"]["gate"]["tensors"]] == [1.0] * 4  # deterministic
    assert md.read_text().strip() and "<testsuite" in xml.read_text()
    err = capsys.readouterr().err
    assert "15 cases in" in err and "layer 2 b: max rel err" in err  # --verbose: timing, precision


def test_float32_inside_is_a_precision_regression(baseline, tmp_path):
    source = (EXAMPLES / "correct_float32.py").read_text() + FLOAT32_INSIDE
    code, report = gate_run(tmp_path, source, "--baseline", str(baseline))
    assert code == 1 and report["verdict"] == "fail"
    rows = [f for f in report["failures"] if f["kind"] == "precision_regression"]
    assert {(f["layer"], f["param"]) for f in rows} == {(1, "W"), (1, "b"), (2, "W"), (2, "b")}
    recorded = {(t["layer"], t["param"]): t["max_rel"] for t in json.loads(baseline.read_text())["tensors"]}
    for f in rows:
        assert f["expected"] == recorded[(f["layer"], f["param"])]  # the baseline's figure
        assert f["got"] > 10 * max(f["expected"], gate.FLOOR) and "precision was lost" in f["detail"]
    # the plain check either passes or says why: right to float32 accuracy only
    assert all(f["diagnosis"] == "precision" for f in report["failures"] if f["kind"] != "precision_regression")


def test_a_sign_bug_fails_as_a_mismatch_not_as_lost_precision(baseline, tmp_path):
    code, report = gate_run(tmp_path, (EXAMPLES / "bug_sign_flip.py").read_text(), "--baseline", str(baseline))
    assert code == 1 and "mismatch" in kinds(report) and "precision_regression" not in kinds(report)
    assert {f["diagnosis"] for f in report["failures"]} == {"sign"}


def test_a_failing_implementation_cannot_become_a_baseline(tmp_path, capsys):
    path = tmp_path / "new-baseline.json"
    code, report = gate_run(
        tmp_path, (EXAMPLES / "bug_sign_flip.py").read_text(), "--baseline", str(path), "--update", *OPTIONS
    )
    assert code == 1 and report["verdict"] == "fail" and not path.exists()
    assert "cannot become a baseline" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--examples", "7"], "--examples 7 differs from the baseline"),
        (["--sizes", "3,5,2"], "--sizes 3,5,2 differs"),
        (["--activations", "sigmoid", "sigmoid"], "--activations sigmoid sigmoid differs"),
        (["--batch", "2"], "recorded with (no --batch)"),
        (["--case", "x.json"], "--case is for check"),
    ],
    ids=["examples", "sizes", "activations", "batch", "case"],
)
def test_options_that_contradict_the_baseline_are_exit_2(baseline, tmp_path, capsys, args, message):
    code, _ = gate_run(tmp_path, "def gradients(params, X, T, spec): pass\n", "--baseline", str(baseline), *args)
    err = capsys.readouterr().err
    assert code == 2 and message in err
    assert "--update" in err or "--case" in args


def test_repeating_the_baselines_options_is_fine():
    base = {"name": "impl", "config": {**gate.DEFAULTS, "examples": 15, "sizes": [3, 4, 2]}}
    config = gate.configuration("src/impl.py", {"examples": 15, "sizes": (3, 4, 2), "seed": None}, base, "b.json")
    assert config == base["config"]


def test_a_baseline_of_another_implementation_is_exit_2(baseline, tmp_path, capsys):
    (tmp_path / "other.py").write_text("def gradients(params, X, T, spec): pass\n")
    assert cli.main(["gate", str(tmp_path / "other.py"), "--baseline", str(baseline)]) == 2
    assert "recorded for impl, not other" in capsys.readouterr().err


def test_a_missing_baseline_says_to_run_with_update(tmp_path, capsys):
    code, _ = gate_run(tmp_path, "def gradients(params, X, T, spec): pass\n", "--baseline", str(tmp_path / "none.json"))
    err = capsys.readouterr().err
    assert code == 2 and "no baseline at" in err and "--update" in err


@pytest.mark.parametrize(
    "text", ["{", "[]", '{"format": 1}', '{"format": 99}'], ids=["truncated", "list", "fields-missing", "future-format"]
)
def test_an_unreadable_baseline_is_exit_2(tmp_path, capsys, text):
    (tmp_path / "b.json").write_text(text)
    (tmp_path / "b.json.sha256").write_text(safe_io.digest_line(text.encode(), "b.json"))  # past the digest
    code, _ = gate_run(tmp_path, "def gradients(params, X, T, spec): pass\n", "--baseline", str(tmp_path / "b.json"))
    assert code == 2 and "record it again with --update" in capsys.readouterr().err


def test_quiet_writes_nothing_to_stderr(tmp_path, capsys):
    code, _ = gate_run(
        tmp_path,
        (EXAMPLES / "correct_vectorized.py").read_text(),
        "--baseline",
        str(tmp_path / "b.json"),
        "--update",
        "--quiet",
        "--examples",
        "3",
        "--sizes",
        "2,1",
    )
    assert code == 0 and capsys.readouterr().err == "" and (tmp_path / "b.json").exists()


def test_the_baseline_has_its_digest_beside_it(baseline):
    digest = gate.digest_path(baseline)
    assert digest.name == "baseline.json.sha256"
    assert digest.read_text() == safe_io.digest_line(baseline.read_bytes(), "baseline.json")  # sha256sum -c reads it


def _copy(baseline, tmp_path):
    path = tmp_path / "baseline.json"
    path.write_bytes(baseline.read_bytes())
    gate.digest_path(path).write_bytes(gate.digest_path(baseline).read_bytes())
    return path


def test_a_baseline_rewritten_after_it_was_recorded_is_exit_2_never_a_pass(baseline, tmp_path, capsys):
    path = _copy(baseline, tmp_path)
    data = json.loads(path.read_text())
    for t in data["tensors"]:
        t["max_rel"] = 1e300  # what a child rewriting the baseline would do: any precision then passes
    path.write_text(json.dumps(data, indent=2) + "\n")
    source = (EXAMPLES / "correct_float32.py").read_text() + FLOAT32_INSIDE
    code, report = gate_run(tmp_path, source, "--baseline", str(path))
    err = capsys.readouterr().err
    assert code == 2 and report is None
    assert "does not match the digest the gate recorded" in err and "--update" in err


def test_a_baseline_without_its_digest_is_exit_2(baseline, tmp_path, capsys):
    path = _copy(baseline, tmp_path)
    gate.digest_path(path).unlink()
    code, _ = gate_run(tmp_path, (EXAMPLES / "correct_vectorized.py").read_text(), "--baseline", str(path))
    err = capsys.readouterr().err
    assert code == 2 and "has no digest beside it" in err and "--update" in err


def test_an_untouched_copy_of_the_baseline_and_its_digest_passes(baseline, tmp_path):
    path = _copy(baseline, tmp_path)
    code, report = gate_run(tmp_path, (EXAMPLES / "correct_vectorized.py").read_text(), "--baseline", str(path))
    assert code == 0 and report["verdict"] == "pass"


def test_a_link_planted_at_the_baseline_path_is_refused_by_update(tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep\n")
    (tmp_path / "b.json").symlink_to(victim)
    with pytest.raises(SpecError, match="symbolic link"):
        gate.save(tmp_path / "b.json", {"format": 1})
    assert victim.read_text() == "keep\n"


# ---------------------------------------------------------------- the judging rules, on records


def result(max_rels, failures=(), dtype="float64"):
    tensors = tuple(TensorVerdict(1, p, 6, 0, 0, 1e-15, r, ()) for p, r in zip("Wb", max_rels))
    return CheckResult(
        "fail" if failures else "pass", 0, 10, "impl.py", ("delta_rule",), tuple(failures), dtype=dtype, tensors=tensors
    )


def baseline_of(max_rels):
    return {
        "name": "impl",
        "dtype": "float64",
        "config": dict(gate.DEFAULTS),
        "tensors": {(1, p): {"max_rel": r, "max_abs": 1e-15, "entries": 6} for p, r in zip("Wb", max_rels)},
    }


@pytest.mark.parametrize(
    "base, new, regressed",
    [
        (0.0, 1e-15, False),  # a zero baseline is compared from the floor, not from 0
        (0.0, 1e-12, True),
        (1e-10, 9e-10, False),  # within the factor
        (1e-10, 2e-9, True),
        (1e-10, math.nan, True),  # NaN never passes
        (1e-10, math.inf, True),
        (math.inf, 1.0, False),  # nothing to compare with
    ],
    ids=["zero-ok", "zero-grown", "within", "grown", "nan", "inf", "baseline-inf"],
)
def test_precision_is_compared_against_max_of_baseline_and_floor(base, new, regressed):
    judged = gate.judge(result([new, new]), baseline_of([base, base]), "b.json", factor=10)
    rows = [f for f in judged.failures if f.kind == "precision_regression"]
    assert len(rows) == (2 if regressed else 0) and judged.verdict == ("fail" if regressed else "pass")


def test_a_real_failure_is_not_also_reported_as_lost_precision():
    wrong = Failure("mismatch", "wrong sign", layer=1, param="W", diagnosis="sign")
    judged = gate.judge(result([2.0, 2.0], [wrong]), baseline_of([1e-16, 1e-16]), "b.json")
    assert [f.kind for f in judged.failures] == ["mismatch"] and not judged.extra["gate"]["precision_compared"]


def test_other_cases_than_the_baselines_are_exit_2():
    with pytest.raises(SpecError, match="--update"):
        gate.judge(result([1e-16]), baseline_of([1e-16, 1e-16]), "b.json")


def test_a_factor_below_1_is_refused():
    with pytest.raises(SpecError, match=">= 1"):
        gate.judge(result([0, 0]), baseline_of([0, 0]), "b.json", factor=0.5)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["gate", "x.py", "--baseline", "b.json", "--factor", "0.5"])
    assert exit_.value.code == 2


def test_the_baseline_file_is_strict_json_even_for_non_finite_figures(tmp_path):
    data = gate.record(result([math.inf, 0.0]), gate.DEFAULTS)
    path = gate.save(tmp_path / "b.json", data)
    text = open(path).read()
    assert "Infinity" not in text and json.loads(text)["tensors"][0]["max_rel"] == "inf"
    assert gate.load(path)["tensors"][(1, "W")]["max_rel"] == math.inf


def test_a_module_name_is_its_own_name():
    assert gate.name_of("examples/correct_vectorized.py") == "correct_vectorized"
    assert gate.name_of("mypackage.backprop") == "mypackage.backprop"


# --- the gate run by an ordinary user (tests/users.py), who owns the baseline ----------------
# The attack of the issue: the checked code rewrites the baseline (and its digest) while the
# gate runs, so that the precision it lost passes. Each run asserts its exit code, a time bound,
# that the recorded baseline and everything outside the work directory is unchanged, and that
# nothing was left in the temp dir or /dev/shm.

REWRITE = """
import hashlib, json


def rewrite(base):
    try:
        data = json.load(open(base))
        for t in data["tensors"]:
            t["max_rel"] = 1e300
        text = json.dumps(data, indent=2) + "\\n"
        with open(base, "w") as f:
            f.write(text)
        with open(base + ".sha256", "w") as f:
            f.write(hashlib.sha256(text.encode()).hexdigest() + "  baseline.json\\n")
        return True
    except OSError as exc:
        print("rewrite failed:", type(exc).__name__)
        return False
"""
REWRITER = (
    REWRITE
    + """
_inside = gradients


def gradients(params, X, T, spec):
    rewrite({BASE})  # won, the precision lost inside passes; lost, it is judged
    return _inside(params, X, T, spec)
"""
)


def _gate(impl, baseline, *args):
    return ["gate", impl, "--baseline", baseline, "--format", "json", "--cases-dir", "cases", *OPTIONS, *args]


@pytest.fixture(scope="module")
def gated_as_user():
    from users import Runner, snapshot

    runner = Runner("user")
    try:
        left_before = runner.leftovers()
        outside = runner.outside()
        d = runner.dir
        float32_inside = (EXAMPLES / "correct_float32.py").read_text() + FLOAT32_INSIDE
        for sub, source in (
            ("correct", (EXAMPLES / "correct_vectorized.py").read_text()),
            ("attack", float32_inside + REWRITER.replace("{BASE}", repr(str(d / "base" / "baseline.json")))),
        ):
            (d / sub).mkdir()
            runner.chown(d / sub)
            runner.write(f"{sub}/impl.py", source)
        (d / "base").mkdir()
        runner.chown(d / "base")
        record = _gate("correct/impl.py", "base/baseline.json", "--update", "--output", "record.json")
        first = runner.cli([record])[0]
        assert first["code"] == 0, first
        recorded = snapshot(d / "base")
        # planted as the user, after the gate recorded: a rewritten copy with the old digest,
        # a copy without its digest, a link to the user's own file, a FIFO; and an untouched copy
        for name in ("tampered", "undigested", "untouched", "twin"):
            (d / name).mkdir()
            for f in ("baseline.json", "baseline.json.sha256"):
                (d / name / f).write_bytes((d / "base" / f).read_bytes())
        data = json.loads((d / "tampered" / "baseline.json").read_text())
        for t in data["tensors"]:
            t["max_rel"] = 1e300
        (d / "tampered" / "baseline.json").write_text(json.dumps(data, indent=2) + "\n")
        (d / "undigested" / "baseline.json.sha256").unlink()
        (d / "link.json").symlink_to(outside / "victim.txt")
        os.mkfifo(d / "fifo.json")
        runner.write("rewrite_twin.py", REWRITE)
        for p in ("tampered", "undigested", "untouched", "twin", "link.json", "fifo.json"):
            runner.chown(d / p)
        outside_before = snapshot(outside)
        runs = {
            "attack": _gate("attack/impl.py", "base/baseline.json", "--output", "attack.json"),
            "tampered": _gate("attack/impl.py", "tampered/baseline.json"),
            "undigested": _gate("correct/impl.py", "undigested/baseline.json"),
            "update_link": _gate("correct/impl.py", "link.json", "--update"),
            "fifo": _gate("correct/impl.py", "fifo.json"),
            "untouched": _gate("correct/impl.py", "untouched/baseline.json"),
            # the twin: the same rewrite run by the harness's user outside a sandbox succeeds,
            # and the gate then misses the lost precision (the digest stops a rewrite alone only)
            "twin_rewrite": {"call": "rewrite_twin:rewrite", "kwargs": {"base": str(d / "twin" / "baseline.json")}},
            "twin_attack": _gate("attack/impl.py", "twin/baseline.json"),
        }
        done = dict(zip(runs, runner.cli(list(runs.values()))))
        yield {
            "runner": runner,
            "runs": done,
            "baseline_changed": snapshot(d / "base") != recorded,
            "outside_changed": snapshot(outside) != outside_before,
            "left": runner.leftovers() - left_before,
        }
    finally:
        runner.cleanup()


GATED = {
    "attack": (1, ""),  # the lost precision is judged: the rewrite did not happen
    "tampered": (2, "does not match the digest the gate recorded"),
    "undigested": (2, "has no digest beside it"),
    "update_link": (2, "symbolic link"),
    "fifo": (2, "FIFO"),
    "untouched": (0, ""),
    "twin_attack": (1, ""),  # the plain check's precision rows only: see below
}


@pytest.mark.parametrize("name", sorted(GATED))
def test_as_an_ordinary_user_the_gate_gives_the_right_exit_in_time(gated_as_user, name):
    run = gated_as_user["runs"][name]
    code, message = GATED[name]
    assert run["code"] == code and message in run["err"], run
    assert run["seconds"] < 60, run
    assert not gated_as_user["baseline_changed"] and not gated_as_user["outside_changed"]


def test_as_an_ordinary_user_the_checked_code_cannot_rewrite_the_baseline(gated_as_user):
    d = gated_as_user["runner"].dir
    report = json.loads((d / "attack.json").read_text())
    assert {f["kind"] for f in report["failures"]} >= {"precision_regression"}, report["failures"]
    assert gated_as_user["runs"]["twin_rewrite"]["value"] is True  # the probe is real
    twin = json.loads(gated_as_user["runs"]["twin_attack"]["out"])
    assert "precision_regression" not in {f["kind"] for f in twin["failures"]}, twin["failures"]
    assert not gated_as_user["left"], gated_as_user["left"]
