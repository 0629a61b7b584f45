"""The harness's half of the data-only wire protocol spoken with the sandbox's child.

Parent and child exchange data, never code: no pickle, so nothing the child sends can make
the harness run anything. A frame is `b"BPV1"`, a 4-byte big-endian header length, a
JSON header, then raw C-ordered array bytes described by the header's `arrays` list (dtype
string and shape per array). `verifier/sandbox/child.py` holds the other half; it is run in isolated
mode and imports nothing from here, so the two are kept in step by hand.

Everything the child sends is validated (magic, header size, JSON fields, dtypes, shapes, byte
counts against a cap) before anything is allocated, because a hostile implementation can
replace the child's writer with its own: a bad frame raises `Broken("bad_output", ...)`, and
the Sandbox replaces the child. What goes the other way is made plain data here too: inputs
become contiguous numeric arrays and the spec a JSON-able dict.
"""

from __future__ import annotations

import json
import os
import re
import struct
from typing import Any, TypeGuard

import numpy as np

MAGIC = b"BPV1"
_HEAD = struct.Struct(">4sI")
_MAX_HEADER = 4 * 2**20  # bytes of JSON header accepted from the child
_MAX_DETAIL = 20_000  # characters of a detail string kept
_DTYPE_RE = re.compile(r"^[<>|=]?[biufc][0-9]{1,2}$")


class Broken(Exception):
    """The child stopped answering properly during one exchange."""

    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.before_call = False  # the request never fully reached the child


def frame(header: dict, seq: int, arrays: list[np.ndarray]) -> list[memoryview]:
    """Request `seq` as the buffers to send; the arrays' own memory is sent, not a copy."""
    header = dict(header, seq=seq)
    header["arrays"] = [{"dtype": a.dtype.str, "shape": list(a.shape)} for a in arrays]
    hbytes = json.dumps(header).encode()
    pending = [memoryview(_HEAD.pack(MAGIC, len(hbytes)) + hbytes)]
    pending += [memoryview(a).cast("B") for a in arrays if a.size]  # type: ignore[arg-type]  # numpy arrays are buffers
    return pending


class ReplyParser:
    """Incremental, validating reader of one reply frame.

    It never reads past the frame: the fixed head, then exactly the header's length, then the
    payload straight into one buffer of the size the (validated) header announced."""

    def __init__(self, seq: int, cap: int, kinds: tuple[str, ...]):
        self.seq, self.cap, self.kinds = seq, cap, kinds
        self.small = bytearray()  # head and header
        self.hlen: int | None = None
        self.header: dict | None = None
        self.descs: list[tuple[np.dtype, tuple[int, ...], int]] = []
        self.total = 0
        self.payload: bytearray | None = None
        self.got = 0
        self.done = False
        self.arrays: list[np.ndarray] = []

    def read_from(self, fd: int) -> bool:
        """Read what is available (non-blocking fd); False on end of file."""
        while not self.done:
            try:
                if self.payload is not None:
                    k = os.readv(fd, [memoryview(self.payload)[self.got :]])
                    if k == 0:
                        return False
                    self.got += k
                else:
                    need = _HEAD.size if self.hlen is None else _HEAD.size + self.hlen
                    data = os.read(fd, need - len(self.small))
                    if not data:
                        return False
                    self.small += data
            except BlockingIOError:
                return True
            except OSError:
                return False
            self._advance()
        return True

    def _advance(self) -> None:
        if self.hlen is None and len(self.small) == _HEAD.size:
            magic, hlen = _HEAD.unpack(bytes(self.small))
            if magic != MAGIC:
                raise Broken(
                    "bad_output",
                    "malformed reply from the sandbox process (not a "
                    "protocol frame); the implementation may have written to the "
                    "harness's pipe",
                )
            if hlen > _MAX_HEADER:
                raise Broken("bad_output", f"malformed reply from the sandbox process (a {hlen}-byte header)")
            self.hlen = hlen
        if self.hlen is not None and self.header is None and len(self.small) == _HEAD.size + self.hlen:
            self._parse_header(bytes(self.small[_HEAD.size :]))
            self.payload = bytearray(self.total)
        if self.payload is not None and self.got == self.total:
            self._build()
            self.done = True

    def _parse_header(self, raw: bytes) -> None:
        bad = "malformed reply from the sandbox process"
        try:
            header = json.loads(raw)
        except (ValueError, RecursionError, UnicodeDecodeError):
            raise Broken("bad_output", f"{bad} (the header is not JSON)") from None
        if not isinstance(header, dict) or header.get("seq") != self.seq or header.get("kind") not in self.kinds:
            raise Broken("bad_output", f"{bad} (unexpected header fields)")
        descs = header.get("arrays", [])
        if not isinstance(descs, list) or len(descs) > 100_000:
            raise Broken("bad_output", f"{bad} (bad array list)")
        total = 0
        for d in descs:
            dtype, shape, nbytes = self._describe(d, bad)
            total += nbytes
            if total > self.cap:
                raise Broken(
                    "bad_output",
                    f"returned more than {self.cap} bytes of arrays (the limit for a network of this size)",
                )
            self.descs.append((dtype, shape, nbytes))
        self.total = total
        self.header = header

    def _describe(self, d, bad: str) -> tuple[np.dtype, tuple[int, ...], int]:
        """One array description checked: its dtype, shape and byte count."""
        if (
            not isinstance(d, dict)
            or not isinstance(d.get("dtype"), str)
            or not _DTYPE_RE.match(d["dtype"])
            or not isinstance(d.get("shape"), list)
            or len(d["shape"]) > 32
        ):
            raise Broken("bad_output", f"{bad} (bad array description)")
        try:
            dtype = np.dtype(d["dtype"])
        except TypeError:
            raise Broken("bad_output", f"{bad} (bad dtype)") from None
        if dtype.kind not in "biufc" or dtype.fields is not None or dtype.itemsize <= 0:
            raise Broken("bad_output", f"{bad} (bad dtype)")
        shape = d["shape"]
        count = 1
        for s in shape:
            if not isinstance(s, int) or isinstance(s, bool) or s < 0:
                raise Broken("bad_output", f"{bad} (bad shape)")
            count *= s
            if count > self.cap:
                break  # over the cap already, so rejected by the caller: stop the product growing
        return dtype, tuple(shape), count * dtype.itemsize

    def _build(self) -> None:
        offset = 0
        for dtype, shape, nbytes in self.descs:
            count = nbytes // dtype.itemsize
            arr = np.frombuffer(self.payload or bytearray(), dtype=dtype, count=count, offset=offset)
            arr = arr.reshape(shape)
            if not arr.flags.aligned:
                arr = arr.copy()
            self.arrays.append(arr)  # writeable views of this reply's own buffer
            offset += nbytes


# ---------------------------------------------------------------- requests


def _as_input(a) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind not in "biufc":
        raise TypeError(f"inputs must be numeric arrays, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr) if arr.ndim else arr.copy()


def pack_inputs(params, X, T) -> tuple[list[np.ndarray], int]:
    """The call's arrays in wire order (W1, b1, ..., WL, bL, X, T) and the number of layers."""
    arrays: list[np.ndarray] = []
    try:
        for W, b in params:
            arrays += [_as_input(W), _as_input(b)]
    except (TypeError, ValueError) as exc:
        raise TypeError(f"params must be a list of (W, b) array pairs: {exc}") from None
    nlayers = len(arrays) // 2
    arrays += [_as_input(X), _as_input(T)]
    return arrays, nlayers


def _loss_json(loss):
    """A loss name, or a convention's mapping of plain values (DESIGN section 2a)."""
    if isinstance(loss, dict):
        return {str(k): v for k, v in loss.items() if isinstance(v, (str, int, float, bool))}
    return str(loss)


def _is_loss(v) -> bool:
    return isinstance(v, str) or (
        isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, (str, int, float, bool)) for k, x in v.items())
    )


def spec_json(spec) -> dict[str, Any]:
    if isinstance(spec, dict):
        get = spec.get
    else:

        def get(key, default=None):
            return getattr(spec, key, default)

    out = {
        "sizes": [int(s) for s in get("sizes", ())],
        "activations": [str(a) for a in get("activations", ())],
        "loss": _loss_json(get("loss", "")),
    }
    if isinstance(spec, dict):
        for key, value in spec.items():
            if key not in out:
                try:
                    json.dumps(value)
                except (TypeError, ValueError):
                    continue
                out[str(key)] = value
    return out


# ---------------------------------------------------------------- replies


def check_description(desc) -> dict[str, Any]:
    if not isinstance(desc, dict):
        raise ValueError("malformed description from the sandbox process")
    out: dict[str, Any] = {}
    for key in ("SUPPORTED_ACTIVATIONS", "SUPPORTED_LOSSES"):
        value = desc.get(key)
        ok = _is_loss if key == "SUPPORTED_LOSSES" else (lambda v: isinstance(v, str))
        if value is not None and (not isinstance(value, list) or not all(ok(v) for v in value)):
            raise ValueError(f"{key} must be a tuple of names")
        out[key] = value
    if desc.get("LOSS") is not None and not _is_loss(desc.get("LOSS")):
        raise ValueError("LOSS must be a loss name or a mapping")
    out["LOSS"] = desc.get("LOSS")
    targets = desc.get("TARGETS")
    if targets is not None and not isinstance(targets, str):
        raise ValueError("TARGETS must be a string")
    out["TARGETS"] = targets
    layout = desc.get("LAYOUT")
    if layout is not None and not isinstance(layout, str):
        raise ValueError("LAYOUT must be a string")
    out["LAYOUT"] = layout
    for key in ("has_gradients", "has_train_step", "has_loss", "has_supports"):
        out[key] = desc.get(key) is True
    for key in ("layers", "layer_losses"):  # DESIGN 3a: NAME_forward/NAME_backward pairs, NAME_loss
        value = desc.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.isidentifier() for v in value):
            raise ValueError(f"malformed {key} from the sandbox process")
        out[key] = value[:1000]
    declared = desc.get("LAYERS")
    if declared is not None and not isinstance(declared, dict):
        raise ValueError('LAYERS must be a dict such as {"batchnorm": {"x": "N,D", "gamma": "D", "beta": "D"}}')
    out["LAYERS"] = declared
    return out


def call_fields(header: dict, wall: float) -> tuple[str, float, float | None, tuple[str, ...]]:
    """A call reply's detail, seconds, loss and mutated inputs, each checked and bounded.

    Seconds that are missing or absurd become `wall`, the round trip the harness measured."""
    detail = as_text(header.get("detail"))
    raw_seconds, raw_loss = header.get("seconds"), header.get("loss")
    seconds = float(raw_seconds) if _is_real(raw_seconds) and 0 <= raw_seconds < 1e9 else wall
    loss = float(raw_loss) if _is_real(raw_loss) else None
    mutated = header.get("mutated")
    mutated = tuple(as_text(m)[:100] for m in mutated[:100]) if isinstance(mutated, list) else ()
    return detail, seconds, loss, mutated


def loss_dtype(header: dict) -> str | None:
    """The dtype name the call's loss value came back in (child_values.LOSS_DTYPES), or None
    when there is no loss or the header names something else."""
    name = header.get("loss_dtype")
    return name if name in ("float16", "float32", "float64") else None  # the child's LOSS_DTYPES


def _is_real(x) -> TypeGuard[int | float]:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def as_text(x) -> str:
    s = x if isinstance(x, str) else ""
    return s if len(s) <= _MAX_DETAIL else s[:_MAX_DETAIL] + " ..."
