"""benchmarks/real_code.py's rule for its adapters (at most GLUE_MAX lines of glue beyond the
declarations), checked without the libraries: the benchmark itself needs the `real` extra."""

from __future__ import annotations

from benchmarks import real_code


def test_every_adapter_is_at_most_five_lines_of_glue():
    adapters = sorted(real_code.ADAPTERS.glob("*.py"))
    assert len(adapters) >= 4
    assert {p.stem: real_code.glue_lines(p) for p in adapters if real_code.glue_lines(p) > 5} == {}


def test_glue_is_counted_past_the_declarations(tmp_path):
    adapter = tmp_path / "long.py"
    adapter.write_text(
        '"""doc"""\n\nimport numpy as np\n\nLOSS = "sse"\n\n\ndef supports(spec):\n    return True\n\n\n'
        "def helper(x):\n    return x\n\n\ndef gradients(params, X, T, spec):\n"
        + "".join(f"    a{i} = {i}  # step\n" for i in range(5))
        + "    # a comment line is not glue\n\n    return [(np.zeros_like(W), np.zeros_like(b)) for W, b in params]\n"
    )
    assert real_code.glue_lines(adapter) == 2 + 6  # helper's two lines, gradients' body of six
