"""NotImplementedError declines a case (DESIGN section 3): skipped, counted in every format,
never a failure row; a run that judged too few is exit 2, "nothing to judge"."""

from __future__ import annotations

import json
from pathlib import Path

from verifier import cli
from verifier.report import render

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "correct_vectorized.py"


def _write(tmp_path, body):
    base = EXAMPLE.read_text()
    impl = tmp_path / "impl.py"
    impl.write_text(
        base.replace("def gradients(params, X, T, spec):", "def gradients(params, X, T, spec):\n" + body, 1)
    )
    return impl


def test_a_fixed_depth_declines_the_rest_and_passes_with_skips_counted(tmp_path, capsys):
    impl = _write(tmp_path, "    if len(params) != 2:\n        raise NotImplementedError('two layers only')\n")
    code = cli.main(["check", str(impl), "--examples", "40", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["verdict"] == "pass" and report["failures"] == []
    assert report["skipped"] > 0 and report["examples"] == 40  # declined cases are replaced by others


def test_skips_show_in_every_format(tmp_path):
    from verifier.run.check import run_check

    impl = _write(tmp_path, "    if len(params) != 2:\n        raise NotImplementedError\n")
    r = run_check(str(impl), examples=30)
    assert r.skipped > 0
    for fmt in ("text", "markdown", "junit", "html"):
        out = render(r, fmt)
        assert f"{r.skipped} skipped" in out or f'value="{r.skipped}"' in out or f"<dd>{r.skipped}</dd>" in out, fmt
    assert json.loads(render(r, "json"))["skipped"] == r.skipped


def test_declining_everything_is_nothing_to_judge_exit_2(tmp_path, capsys):
    impl = _write(tmp_path, "    raise NotImplementedError('not yet')\n")
    code = cli.main(["check", str(impl), "--examples", "12", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 2 and report["verdict"] == "error"
    (row,) = report["failures"]
    assert row["kind"] == "nothing_to_judge" and "nothing to judge" in row["detail"] and report["skipped"] >= 12


def test_another_exception_is_still_a_failure(tmp_path, capsys):
    impl = _write(tmp_path, "    raise ValueError('bug')\n")
    code = cli.main(["check", str(impl), "--examples", "5", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["failures"][0]["kind"] == "exception" and report["skipped"] == 0


# --- supports(spec): networks the code turns down are never drawn ---------------------------

TWO_LAYERS = "def supports(spec):\n    return len(spec.sizes) == 3\n\n\n"
LOUD = "    if len(params) != 2:\n        raise ValueError('two layers only')\n"


def _with_supports(tmp_path, supports, body=LOUD):
    impl = _write(tmp_path, body)
    impl.write_text(impl.read_text().replace("def gradients(", supports + "def gradients(", 1))
    return impl


def test_supports_filters_generation_so_other_depths_are_never_called(tmp_path, capsys):
    impl = _with_supports(tmp_path, TWO_LAYERS)
    code = cli.main(["check", str(impl), "--examples", "20", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["verdict"] == "pass" and report["examples"] == 20 and report["skipped"] == 0
    assert report["extra"]["rejected_networks"] > 0


def test_without_supports_the_same_code_fails_on_other_depths(tmp_path, capsys):
    impl = _write(tmp_path, LOUD)
    code = cli.main(["check", str(impl), "--examples", "20", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and any("two layers only" in f["detail"] for f in report["failures"])


def test_supports_does_not_hide_a_wrong_gradient_on_what_it_accepts(tmp_path, capsys):
    body = "    if len(params) != 2:\n        raise ValueError('two layers only')\n    X = -X\n"
    impl = _with_supports(tmp_path, TWO_LAYERS, body)
    code = cli.main(["check", str(impl), "--examples", "20", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["failures"][0]["kind"] == "mismatch"
    assert all(len(f["case"]["sizes"]) == 3 for f in report["failures"] if f["case"])


def test_supports_turning_everything_down_is_nothing_to_judge(tmp_path, capsys):
    impl = _with_supports(tmp_path, "def supports(spec):\n    return False\n\n\n")
    code = cli.main(["check", str(impl), "--examples", "10", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 2 and report["failures"][0]["kind"] == "nothing_to_judge"
    assert "supports(spec) turned down" in report["failures"][0]["detail"]


def test_a_supports_that_raises_is_a_failure_row_not_a_filter(tmp_path, capsys):
    impl = _with_supports(tmp_path, "def supports(spec):\n    raise KeyError('oops')\n\n\n", body="")
    code = cli.main(["check", str(impl), "--examples", "5", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["failures"][0]["kind"] == "exception"
    assert report["failures"][0]["detail"].startswith("supports(spec): KeyError")


def test_supports_in_process_too(tmp_path):
    import importlib.util

    from verifier.run.check import run_check
    from verifier.sandbox import InProcess

    impl = _with_supports(tmp_path, TWO_LAYERS)
    spec = importlib.util.spec_from_file_location("two_layers_impl", impl)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    r = run_check("two_layers_impl", examples=15, runner=InProcess(module))
    assert r.verdict == "pass" and r.examples == 15 and r.extra["rejected_networks"] > 0
