"""The isolation layer against hostile implementations.

Every implementation here behaves correctly unless the spec carries `evil=True`, so each test
can show both the failure row and that the same Sandbox keeps working afterwards.
"""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time

import numpy as np
import pytest

from verifier.errors import ImplementationError
from verifier.records import CallOutcome
from verifier.sandbox import Sandbox

IS_ROOT = os.geteuid() == 0
SIZES = [3, 4, 2]
SPEC = {"sizes": SIZES, "activations": ["sigmoid", "identity"], "loss": "mse"}
EVIL = dict(SPEC, evil=True)

TEMPLATE = """\
import os, sys, time, signal
import numpy as np

def fill(params):
    return [(np.full_like(W, 0.5), np.full_like(b, -0.5)) for W, b in params[:2]]

def correct(params, X, T, spec):
    assert isinstance(spec.sizes, tuple) and spec["loss"] == spec.loss
    assert not X.flags.writeable and not params[0][0].flags.writeable
    return fill(params)

def gradients(params, X, T, spec):
    if spec.get("evil"):
{body}
    return correct(params, X, T, spec)
"""


def make_case(seed=0):
    rng = np.random.default_rng(seed)
    params = [(rng.normal(size=(SIZES[i + 1], SIZES[i])), rng.normal(size=SIZES[i + 1])) for i in range(len(SIZES) - 1)]
    return params, rng.normal(size=(5, SIZES[0])), rng.normal(size=(5, SIZES[-1]))


def write_impl(tmp_path, body, name="impl.py", template=TEMPLATE):
    path = tmp_path / name
    path.write_text(template.format(body=textwrap.indent(textwrap.dedent(body), " " * 8)))
    return str(path)


def assert_correct(outcome: CallOutcome, params):
    assert outcome.kind == "ok", outcome.detail
    assert len(outcome.grads) == len(params)
    for (dW, db), (W, b) in zip(outcome.grads, params):
        assert dW.shape == W.shape and db.shape == b.shape
        assert np.all(dW == 0.5) and np.all(db == -0.5)


def gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


# ------------------------------------------------------------------ the good path


def test_correct_implementation_round_trip(tmp_path):
    impl = write_impl(
        tmp_path,
        "pass",
        template=TEMPLATE.replace(
            "import numpy as np\n",
            "import numpy as np\nSUPPORTED_LOSSES = ('mse', 'sse')\nLAYOUT = 'out_in'\nprint('imported')\n",
        ),
    )
    params, X, T = make_case()
    with Sandbox(impl, timeout=5) as box:
        desc = box.describe()
        assert desc == {
            "SUPPORTED_ACTIVATIONS": None,
            "SUPPORTED_LOSSES": ["mse", "sse"],
            "LOSS": None,
            "TARGETS": None,
            "LAYOUT": "out_in",
            "has_gradients": True,
            "has_train_step": False,
            "has_loss": False,  # self mode's loss(params, X, T, spec) (DESIGN 3)
            "layers": [],  # a layers file's pairs and loss layers (DESIGN 3a)
            "layer_losses": [],
            "LAYERS": None,
            "has_supports": False,
        }
        first = box.gradients(params, X, T, SPEC)
        assert_correct(first, params)
        pid = box.pid
        for _ in range(3):
            assert_correct(box.gradients(params, X, T, SPEC), params)
        assert box.pid == pid and box.starts == 1  # one child serves every call
        assert first.loss is None and first.mutated == () and first.seconds >= 0
    assert box.pid is None and gone(pid)


@pytest.mark.parametrize(
    "value, loss, dtype",
    [("np.float32(0.5)", 0.5, "float32"), ("np.array([0.25], np.float16)", 0.25, "float16"), ("2", 2.0, "float64")],
    ids=["float32-scalar", "float16-array", "int"],
)
def test_the_loss_values_own_dtype_crosses_from_the_child(tmp_path, value, loss, dtype):
    impl = write_impl(tmp_path, f"return {value}, fill(params)")
    params, X, T = make_case()
    with Sandbox(impl, timeout=5) as box:
        out = box.gradients(params, X, T, EVIL)
    assert out.kind == "ok" and out.loss == loss and out.loss_dtype == dtype, out


def test_a_loss_dtype_the_child_should_not_send_is_none():
    from verifier.sandbox.protocol import loss_dtype

    assert [loss_dtype({"loss_dtype": d}) for d in ("float32", "int8", ["float64"], None)] == [
        "float32",
        None,
        None,
        None,
    ]


def test_loss_form_dtype_and_output_pass_through(tmp_path):
    impl = write_impl(
        tmp_path,
        """
        print("computing", spec.sizes)
        g = [(W.astype(np.float32).T, np.float64(1.0)) for W, b in params]
        return 1.25, g
    """,
    )
    params, X, T = make_case()
    with Sandbox(impl, timeout=5) as box:
        out = box.gradients(params, X, T, EVIL)
        assert out.kind == "ok", out.detail
        assert out.loss == 1.25 and out.loss_dtype == "float64"  # a Python float
        dW, db = out.grads[0]
        assert dW.dtype == np.float32 and dW.shape == params[0][0].T.shape  # wrong shape kept
        assert np.array_equal(dW, params[0][0].astype(np.float32).T)
        assert db.shape == () and db.dtype == np.float64
        assert "computing (3, 4, 2)" in out.output


def test_nan_gradients_are_passed_through(tmp_path):
    impl = write_impl(tmp_path, "return [(W * np.nan, b * np.inf) for W, b in params]")
    params, X, T = make_case()
    with Sandbox(impl, timeout=5) as box:
        out = box.gradients(params, X, T, EVIL)
        assert out.kind == "ok"
        assert np.isnan(out.grads[1][0]).all() and np.isinf(out.grads[1][1]).all()


def test_train_step_returns_params(tmp_path):
    src = TEMPLATE + textwrap.dedent("""
        def train_step(params, X, T, spec, lr):
            return [(W - lr * 0.5, b + lr * 0.5) for W, b in params]
    """)
    impl = write_impl(tmp_path, "pass", template=src)
    params, X, T = make_case()
    with Sandbox(impl, timeout=5) as box:
        assert box.describe()["has_train_step"] is True
        out = box.train_step(params, X, T, SPEC, lr=0.1)
        assert out.kind == "ok" and out.grads is None
        assert np.allclose(out.params[0][0], params[0][0] - 0.05)


def test_meanwhile_runs_while_the_child_works(tmp_path):
    """The harness's own work for a case (`meanwhile`) overlaps the user's call: a 1 s call and
    1 s of harness work take well under the 2 s they would one after the other."""
    impl = write_impl(tmp_path, "time.sleep(spec['sleep'])")
    params, X, T = make_case()
    ran = []
    with Sandbox(impl, timeout=5) as box:
        box.describe()
        t0 = time.monotonic()
        out = box.gradients(params, X, T, dict(EVIL, sleep=1.0), meanwhile=lambda: ran.append(time.sleep(1.0)))
        took = time.monotonic() - t0
    assert out.kind == "ok" and ran == [None]
    assert took < 1.7, took


def test_meanwhile_is_not_counted_as_the_childs_time(tmp_path):
    """Harness work longer than the call's timeout does not time out a quick call; the twin, a
    call that hangs, still times out with the same harness work beside it."""
    impl = write_impl(tmp_path, "time.sleep(spec['sleep'])")
    params, X, T = make_case()
    with Sandbox(impl, timeout=1.0) as box:
        box.describe()
        quick = box.gradients(params, X, T, dict(EVIL, sleep=0.1), meanwhile=lambda: time.sleep(1.3))
        hangs = box.gradients(params, X, T, dict(EVIL, sleep=30), meanwhile=lambda: time.sleep(0.1))
    assert quick.kind == "ok", quick.detail
    assert_correct(quick, params)
    assert hangs.kind == "timeout", hangs.detail


def test_module_name_impl(tmp_path, monkeypatch):
    os.chmod(tmp_path, 0o755)  # run by root, the child's own uid must be able to read it
    (tmp_path / "bpv_user_mod.py").write_text(TEMPLATE.format(body="        pass"))
    monkeypatch.syspath_prepend(str(tmp_path))
    params, X, T = make_case()
    with Sandbox("bpv_user_mod", timeout=5) as box:
        assert box.describe()["has_gradients"]
        assert_correct(box.gradients(params, X, T, SPEC), params)


# ------------------------------------------------------------------ hostile calls

HOSTILE = {
    "raises": ("x = np.dot(X, np.ones(7))", "exception", "ValueError"),
    "hangs": ("while True:\n    pass", "timeout", "no answer within"),
    "sleeps": ("time.sleep(100)", "timeout", "no answer within"),
    "os_exit": ("os._exit(3)", "exited", "code 3"),
    "sys_exit": ("sys.exit(0)", "exited", "sys.exit(0)"),
    "segfault": ("import ctypes\nctypes.string_at(0)", "exited", "SIGSEGV"),
    "self_signal": ("os.kill(os.getpid(), signal.SIGTERM)", "exited", "SIGTERM"),
    "memory_hog": ("np.ones(50 * 2**30 // 8)", "exception", "MemoryError"),
    "memory_creep": ("hog = []\nwhile True:\n    hog.append(np.empty(2**24))", "exception", "MemoryError"),
    "returns_string": ("return 'gradients'", "bad_output", "got str"),
    "returns_floats": (
        "return [(np.ones_like(W), np.ones_like(b)) for W, b in params[:-1]] + [1.0]",
        "bad_output",
        "layer 2: expected a (dW, db) pair, got float",
    ),
    "returns_objects": (
        "return [(object(), b) for W, b in params]",
        "bad_output",
        "layer 1 dW: expected a numeric array",
    ),
    "returns_ragged": ("return [([[1.0], [1.0, 2.0]], b) for W, b in params]", "bad_output", "layer 1 dW"),
    "wrong_count": ("return [(W, b) for W, b in params] * 2", "bad_output", "got a list of 4"),
    "returns_none": ("return None", "bad_output", "got NoneType"),
    "evil_str": (
        "class E(Exception):\n    def __str__(self):\n        raise RuntimeError\nraise E()",
        "exception",
        "E",
    ),
    "fork_bomb_thread": (
        "import threading\nthreading.Thread(target=time.sleep, args=(100,)).start()",
        "exception",
        "thread",
    ),
    "closes_reply_pipe": ("os.close(int(sys.argv[2]))\ntime.sleep(100)", "exited", "closed the harness's pipe"),
}


@pytest.fixture(scope="module")
def hostile_box(tmp_path_factory):
    """One Sandbox for every hostile behaviour: it must survive them all, one after another."""
    cases = "".join(
        f"\ndef case_{name}(params, X, T, spec):\n{textwrap.indent(body, '    ')}\n"
        for name, (body, _, _) in HOSTILE.items()
    )
    src = TEMPLATE.replace("{body}", "        return globals()['case_' + spec['mode']](params, X, T, spec)") + cases
    path = tmp_path_factory.mktemp("hostile") / "hostile_impl.py"
    path.write_text(src)
    with Sandbox(str(path), timeout=1, memory_mb=1024) as box:
        box.describe()
        yield box


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_call_becomes_a_row_and_the_sandbox_recovers(hostile_box, name):
    body, kind, needle = HOSTILE[name]
    params, X, T = make_case()
    t0 = time.monotonic()
    out = hostile_box.gradients(params, X, T, dict(EVIL, mode=name))
    assert time.monotonic() - t0 < 5
    assert out.kind == kind, (out.kind, out.detail)
    assert needle.lower() in out.detail.lower(), out.detail
    assert out.grads is None
    assert_correct(hostile_box.gradients(params, X, T, SPEC), params)


def test_closing_stdout_and_stderr_is_harmless(tmp_path):
    impl = write_impl(tmp_path, "os.close(1)\nos.close(2)\nreturn correct(params, X, T, spec)")
    params, X, T = make_case()
    with Sandbox(impl, timeout=5) as box:
        assert_correct(box.gradients(params, X, T, EVIL), params)
        assert_correct(box.gradients(params, X, T, SPEC), params)
        assert box.starts == 1


def test_exception_detail_names_the_users_line(tmp_path):
    impl = write_impl(tmp_path, "x = np.dot(X, np.ones(7))")
    params, X, T = make_case()
    with Sandbox(impl, timeout=5) as box:
        out = box.gradients(params, X, T, EVIL)
    assert out.kind == "exception"
    assert "impl.py:" in out.detail and "np.dot(X, np.ones(7))" in out.detail
    assert "_child" not in out.detail  # none of the child's own files: _child.py, _child_*.py


def test_import_error_in_a_users_helper_names_the_helper_not_the_child(tmp_path):
    os.chmod(tmp_path, 0o755)  # run by root, the child's own uid must be able to read it
    (tmp_path / "bpv_helper_raises.py").write_text("x = 1\nraise KeyError('from the helper')\n")
    path = tmp_path / "uses_helper.py"
    path.write_text("import bpv_helper_raises\n\ndef gradients(params, X, T, spec):\n    return []\n")
    with Sandbox(str(path), timeout=5) as box:
        with pytest.raises(ImplementationError) as info:
            box.describe()
    text = str(info.value)
    assert "KeyError: 'from the helper'" in text and "bpv_helper_raises.py:2" in text, text
    assert "_child" not in text, text


@pytest.mark.skipif(not IS_ROOT, reason="the child has another uid than the harness only when run by root")
def test_helpers_the_childs_uid_cannot_read_are_not_read_for_it(tmp_path):
    # a directory only root may read: the main file is sent by the harness (it was named),
    # its helper is not read with root's privileges, and the error says why and what to do
    os.chmod(tmp_path, 0o700)
    (tmp_path / "bpv_private_helper.py").write_text("X = 1\n")
    path = tmp_path / "uses_private_helper.py"
    path.write_text("import bpv_private_helper\n\ndef gradients(params, X, T, spec):\n    return []\n")
    with Sandbox(str(path), timeout=5) as box:
        with pytest.raises(ImplementationError) as info:
            box.describe()
    text = str(info.value)
    assert "No module named 'bpv_private_helper'" in text and f"cannot read {tmp_path}" in text, text
    assert "readable to others" in text, text
    os.chmod(tmp_path, 0o755)  # the twin: readable to the child's uid, it imports
    with Sandbox(str(path), timeout=5) as box:
        assert box.describe()["has_gradients"]


def test_output_flood_is_capped_and_stopped(tmp_path):
    impl = write_impl(tmp_path, "while True:\n    print('x' * 10000)")
    params, X, T = make_case()
    with Sandbox(impl, timeout=1, output_limit=50_000) as box:
        out = box.gradients(params, X, T, EVIL)
        assert out.kind == "timeout"
        assert out.output_bytes > 50_000
        assert len(box.last_output) == 50_000 and len(out.output) < 5000
        assert_correct(box.gradients(params, X, T, SPEC), params)


def test_cpu_budget(tmp_path):
    impl = write_impl(tmp_path, "while True:\n    pass")
    params, X, T = make_case()
    with Sandbox(impl, timeout=20, cpu_seconds=0.3) as box:
        t0 = time.monotonic()
        out = box.gradients(params, X, T, EVIL)
        assert time.monotonic() - t0 < 5
        assert out.kind == "timeout" and "CPU" in out.detail
        assert_correct(box.gradients(params, X, T, SPEC), params)


@pytest.mark.parametrize(
    "body, names",
    [
        ("X.flags.writeable = True\nX[0, 0] = 99.0", ("X",)),
        ("W = params[1][0]\nW.flags.writeable = True\nW *= 2", ("params[1].W",)),
        ("T.shape = (T.size,)", ("T",)),
        ("params.append(params[0])", ("params",)),
    ],
)
def test_mutated_input_is_reported_with_the_grads(tmp_path, body, names):
    impl = write_impl(tmp_path, body + "\nreturn fill(params)")
    params, X, T = make_case()
    X_before = X.copy()
    with Sandbox(impl, timeout=5) as box:
        out = box.gradients(params, X, T, EVIL)
        assert out.kind == "mutated_input", out.detail
        assert out.mutated == names
        assert names[0] in out.detail and "copy" in out.detail
        assert out.grads is not None and np.all(out.grads[0][0] == 0.5)
        assert_correct(box.gradients(params, X, T, SPEC), params)
    assert np.array_equal(X, X_before)  # the harness's own arrays are never touched


def test_fork_is_refused_or_reaped(tmp_path):
    impl = write_impl(
        tmp_path,
        """
        pid = os.fork()
        if pid == 0:
            time.sleep(1000)
            os._exit(0)
        print("forked", pid)
    """,
    )
    params, X, T = make_case()
    with Sandbox(impl, timeout=2) as box:
        out = box.gradients(params, X, T, EVIL)
        assert_correct(box.gradients(params, X, T, SPEC), params)
    if out.kind == "exception":
        assert "BlockingIOError" in out.detail or "Resource temporarily" in out.detail
    else:  # the fork succeeded (a privileged child): the process group kill must reap it
        pid = int(out.output.split("forked", 1)[1].split()[0])
        time.sleep(0.2)
        assert gone(pid)


# ------------------------------------------------------------------ tampering with the harness

TAMPER = {
    # numpy patched inside the child only: conversion uses references taken before user code
    "patch_numpy": (
        """
        np.dot = lambda *a, **k: 0
        np.asarray = np.array = lambda *a, **k: 'patched'
        np.ascontiguousarray = np.frombuffer = None
        np.lib.format.write_array = np.lib.format.read_array = None
        return [(np.full_like(W, 0.5), np.full_like(b, -0.5)) for W, b in params]
    """,
        "ok",
    ),
    # the child's own protocol functions replaced by garbage writers
    "patch_send_garbage": (
        """
        import __main__
        __main__._send = lambda fd, header, arrays=(): os.write(fd, b'\\x00garbage' * 100)
        return correct(params, X, T, spec)
    """,
        "bad_output",
    ),
    "patch_send_huge_shape": (
        """
        import __main__, json, struct
        def send(fd, header, arrays=()):
            header = dict(header, arrays=[{"dtype": "<f8", "shape": [10**6, 10**6]}] * 4)
            raw = json.dumps(header).encode()
            os.write(fd, b"BPV1" + struct.pack(">I", len(raw)) + raw)
            time.sleep(100)
        __main__._send = send
        return correct(params, X, T, spec)
    """,
        "bad_output",
    ),
    "patch_send_object_dtype": (
        """
        import __main__, json, struct
        def send(fd, header, arrays=()):
            header = dict(header, arrays=[{"dtype": "|O", "shape": [1]}] * 4)
            raw = json.dumps(header).encode()
            os.write(fd, b"BPV1" + struct.pack(">I", len(raw)) + raw + b"\\0" * 32)
        __main__._send = send
        return correct(params, X, T, spec)
    """,
        "bad_output",
    ),
    "patch_send_drops_arrays": (
        """
        import __main__
        real = __main__._send
        __main__._send = lambda fd, header, arrays=(): real(fd, header, list(arrays)[:1])
        return correct(params, X, T, spec)
    """,
        "bad_output",
    ),
    "huge_header_length": (
        """
        os.write(int(sys.argv[2]), b"BPV1\\xff\\xff\\xff\\xff")
        time.sleep(100)
    """,
        "bad_output",
    ),
    "header_not_json": (
        """
        os.write(int(sys.argv[2]), b"BPV1\\x00\\x00\\x00\\x05{{{{{")
        time.sleep(100)
    """,
        "bad_output",
    ),
    "half_written_header": (
        """
        os.write(int(sys.argv[2]), b"BPV1\\x00\\x00\\x10\\x00{\\"seq\\"")
        time.sleep(100)
    """,
        "timeout",
    ),
    "forged_extra_reply": (
        """
        os.write(int(sys.argv[2]), b"BPV1")
        return correct(params, X, T, spec)
    """,
        "bad_output",
    ),
}


@pytest.mark.parametrize("name", sorted(TAMPER))
def test_tampering_with_the_protocol_cannot_hurt_the_parent(tmp_path, name):
    body, kind = TAMPER[name]
    impl = write_impl(tmp_path, body)
    params, X, T = make_case()
    parent_dot = np.dot
    with Sandbox(impl, timeout=1.5) as box:
        box.describe()  # the child is up before the clock starts
        t0 = time.monotonic()
        out = box.gradients(params, X, T, EVIL)
        assert out.kind == kind, (out.kind, out.detail)
        if kind == "bad_output":
            assert time.monotonic() - t0 < 1.2  # judged at once, not by the timeout
        assert_correct(box.gradients(params, X, T, SPEC), params)
    assert np.dot is parent_dot


def test_stray_reply_bytes_after_a_call_restart_the_child(tmp_path):
    impl = write_impl(
        tmp_path,
        """
        import __main__
        real = __main__._send
        def send(fd, header, arrays=()):
            real(fd, header, arrays)
            os.write(fd, b"junk")
        __main__._send = send
        return correct(params, X, T, spec)
    """,
    )
    params, X, T = make_case()
    with Sandbox(impl, timeout=2) as box:
        box.gradients(params, X, T, EVIL)
        assert box.starts == 1
        assert_correct(box.gradients(params, X, T, SPEC), params)
        assert box.starts == 2


def test_a_closed_request_channel_cannot_raise_sigpipe_in_the_harness(tmp_path):
    impl = write_impl(
        tmp_path,
        """
        r, w = os.pipe()
        os.dup2(r, int(sys.argv[1]))  # the harness's request socket is closed, the child lives
        return correct(params, X, T, spec)
    """,
    )
    params, X, T = make_case()
    old = signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # as a CLI piping to `head` might
    try:
        with Sandbox(impl, timeout=5) as box:
            assert_correct(box.gradients(params, X, T, EVIL), params)
            t0 = time.monotonic()
            # The next request finds the channel closed: the call is retried on a fresh child,
            # since the failure was the earlier call's doing.
            assert_correct(box.gradients(params, X, T, SPEC), params)
            assert box.starts == 2 and time.monotonic() - t0 < 4
    finally:
        signal.signal(signal.SIGPIPE, old)


@pytest.mark.skipif(not IS_ROOT, reason="privileges are only dropped when the harness is root")
def test_child_cannot_kill_the_harness_or_write_its_files(tmp_path):
    victim = tmp_path / "harness_file.txt"
    victim.write_text("keep")
    os.chmod(tmp_path, 0o755)
    impl = write_impl(
        tmp_path,
        f"""
        if spec.get("mode") == "write":
            open({str(victim)!r}, "w").write("owned")
        os.kill(os.getppid(), signal.SIGKILL)
    """,
    )
    params, X, T = make_case()
    with Sandbox(impl, timeout=2) as box:
        out = box.gradients(params, X, T, EVIL)
        assert out.kind == "exception" and "PermissionError" in out.detail
        out = box.gradients(params, X, T, dict(EVIL, mode="write"))
        # the submission's directory is a read-only bind in the child's mount namespace
        # (without one, the file's permissions refuse the dropped uid)
        assert out.kind == "exception", out.detail
        assert "Read-only file system" in out.detail or "PermissionError" in out.detail, out.detail
        assert box.isolation["dropped_privileges"] is True
        assert_correct(box.gradients(params, X, T, SPEC), params)
    assert victim.read_text() == "keep"


@pytest.mark.skipif(not IS_ROOT, reason="privileges are only dropped when the harness is root")
def test_kill_all_reaches_no_other_sandbox(tmp_path):
    impl = write_impl(tmp_path, "os.kill(-1, signal.SIGKILL)\nreturn correct(params, X, T, spec)")
    params, X, T = make_case()
    with Sandbox(impl, timeout=2) as bystander, Sandbox(impl, timeout=2) as attacker:
        assert_correct(bystander.gradients(params, X, T, SPEC), params)
        attacker.gradients(params, X, T, EVIL)
        assert_correct(bystander.gradients(params, X, T, SPEC), params)
        assert bystander.starts == 1


# ------------------------------------------------------------------ loading


@pytest.mark.parametrize(
    "source, needle",
    [
        ("def gradients(params, X, T, spec)\n    return []\n", "SyntaxError"),
        (
            "import numpy as np\n\ndef grads(params, X, T, spec):\n    return []\n",
            "define gradients(params, X, T, spec)",
        ),
        ("import no_such_module_for_bpv\n", "No module named 'no_such_module_for_bpv'"),
        ("raise RuntimeError('broken at import')\n", "RuntimeError: broken at import"),
        ("import sys\nsys.exit(2)\n", "sys.exit(2)"),
        ("import os\nos._exit(4)\n", "code 4"),
        ("while True:\n    pass\n", "did not finish within"),
        (
            "SUPPORTED_LOSSES = 3\ndef gradients(params, X, T, spec):\n    return []\n",
            "SUPPORTED_LOSSES must be a tuple",
        ),
    ],
)
def test_describe_reports_unusable_modules(tmp_path, source, needle):
    path = tmp_path / "broken.py"
    path.write_text(source)
    with Sandbox(str(path), timeout=1) as box:
        with pytest.raises(ImplementationError) as info:
            box.describe()
        assert needle in str(info.value), str(info.value)


def test_gradients_on_an_unimportable_module_is_a_row(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("raise RuntimeError('broken at import')\n")
    params, X, T = make_case()
    with Sandbox(str(path), timeout=2) as box:
        out = box.gradients(params, X, T, SPEC)
    assert out.kind == "exception" and out.grads is None
    assert "RuntimeError: broken at import" in out.detail


def test_an_implementation_that_is_a_fifo_is_refused_not_waited_for(tmp_path):
    os.mkfifo(tmp_path / "impl.py")
    with pytest.raises(ImplementationError, match="not a regular file"):
        Sandbox(str(tmp_path / "impl.py"))
    write_impl(tmp_path, "pass", name="real.py")  # the twin: a regular file is read
    assert Sandbox(str(tmp_path / "real.py")).impl.endswith("real.py")


@pytest.mark.skipif(not IS_ROOT, reason="links are followed for an ordinary user, who reads them anyway")
def test_run_by_root_a_linked_implementation_is_not_read(tmp_path):
    key = tmp_path / "answer_key.py"
    key.write_text("def gradients(params, X, T, spec):\n    return 'the answer'\n")
    os.chmod(key, 0o600)
    os.symlink(key, tmp_path / "impl.py")
    with pytest.raises(ImplementationError, match="symbolic link"):
        Sandbox(str(tmp_path / "impl.py"))
    assert Sandbox(str(key)).impl == str(key)  # the twin: the file itself, named, is read


def test_missing_file_and_bad_module_name():
    with pytest.raises(ImplementationError, match="cannot read"):
        Sandbox("no/such/file_for_bpv.py")
    with pytest.raises(ImplementationError, match="neither a .py file nor a module"):
        Sandbox("not a module!")
    with Sandbox("no_such_module_for_bpv", timeout=5) as box:
        with pytest.raises(ImplementationError, match="No module named"):
            box.describe()


def test_child_imports_only_numpy_and_the_stdlib(tmp_path):
    impl = write_impl(
        tmp_path,
        """
        bad = sorted(m for m in sys.modules if m.split('.')[0] in ('verifier', 'reference_impls',
                                                                   'hypothesis', 'jax', 'pytest'))
        return [(np.full_like(W, len(bad)), np.full_like(b, 0)) for W, b in params]
    """,
    )
    params, X, T = make_case()
    with Sandbox(impl, timeout=5) as box:
        out = box.gradients(params, X, T, EVIL)
    assert out.kind == "ok" and np.all(out.grads[0][0] == 0)
    assert "verifier" in sys.modules  # the parent has it; the child does not


def test_the_reply_pipe_is_widened_where_the_system_allows(tmp_path):
    """A big network's gradients cross in 1 MB writes, not 64 KB ones (limits.REPLY_PIPE)."""
    import fcntl

    from verifier.sandbox import limits

    impl = write_impl(tmp_path, "pass")
    with Sandbox(impl, timeout=5) as box:
        box.describe()
        size = fcntl.fcntl(box._fds["rep_r"], fcntl.F_GETPIPE_SZ)
    with open("/proc/sys/fs/pipe-max-size") as f:
        allowed = int(f.read()) >= limits.REPLY_PIPE
    assert size == limits.REPLY_PIPE if allowed else size >= 1 << 16
