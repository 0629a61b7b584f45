"""What crosses between a user's implementation and the harness, as plain values: the spec the
user is handed, the user's returned value read back as arrays, the module's optional
attributes, and an exception turned into a short text.

Used in two places: the sandbox child (`verifier/sandbox/child.py`, which loads this file by path
before any user code runs) and the in-process runner of the Python API (`verifier/api.py`).
Standard library and numpy only, never the harness: in the child, this is the user's process.
"""

import collections.abc
import os
import traceback

import numpy as np

# References captured before any user code runs, so that a user monkeypatching numpy
# (np.asarray = ...) does not change how replies are built.
_asarray = np.asarray
_ndarray = np.ndarray
_generic = np.generic
_extract_frames = traceback.StackSummary.extract
_walk_tb = traceback.walk_tb
_format_exc_only = traceback.format_exception_only

_NUMERIC_KINDS = "biufc"
_HERE = os.path.dirname(os.path.abspath(__file__))
# The child's own files: their frames never show in a user's traceback.
OWN_FILES = frozenset(
    os.path.join(_HERE, n) for n in ("child.py", "child_setup.py", "child_values.py", "child_layers.py", "child_fs.py")
)


# ---------------------------------------------------------------- what the user gets


class Spec(collections.abc.Mapping):
    """The network spec handed to the user: attributes `.sizes`, `.activations`, `.loss`
    (plus any extra field the harness sends), read-only, and also readable as a mapping."""

    __slots__ = ("_fields",)

    def __init__(self, fields):
        object.__setattr__(self, "_fields", dict(fields))

    def __getattr__(self, name):
        try:
            return object.__getattribute__(self, "_fields")[name]
        except KeyError:
            raise AttributeError(f"spec has no field {name!r}") from None

    def __setattr__(self, name, value):
        raise AttributeError("spec is read-only")

    def __delattr__(self, name):
        raise AttributeError("spec is read-only")

    def __getitem__(self, key):
        return self._fields[key]

    def __iter__(self):
        return iter(self._fields)

    def __len__(self):
        return len(self._fields)

    def __repr__(self):
        inner = ", ".join(f"{k}={v!r}" for k, v in self._fields.items())
        return f"Spec({inner})"


def make_spec(raw):
    fields = dict(raw)
    fields["sizes"] = tuple(int(s) for s in raw.get("sizes", ()))
    fields["activations"] = tuple(str(a) for a in raw.get("activations", ()))
    loss = raw.get("loss", "")
    fields["loss"] = dict(loss) if isinstance(loss, dict) else str(loss)  # a convention's mapping stays one
    return Spec(fields)


# ---------------------------------------------------------------- describing failures


def _show_path(filename):
    base = os.path.basename(filename)
    if base == "__init__.py":
        base = os.path.join(os.path.basename(os.path.dirname(filename)), base)
    return base


def exception_text(exc, frames=3):
    """'Type: message' and the last few frames of the user's code, innermost last."""
    try:
        msg = "".join(_format_exc_only(type(exc), exc)).strip()
    except BaseException:  # an exception whose __str__ itself fails
        try:
            msg = type(exc).__name__ + ": <message could not be shown>"
        except BaseException:
            msg = "<exception could not be shown>"
    if len(msg) > 2000:
        msg = msg[:2000] + " ..."
    lines = [msg]
    try:
        last = collections.deque(maxlen=12)
        for frame, lineno in _walk_tb(exc.__traceback__):
            filename = frame.f_code.co_filename
            if os.path.abspath(filename) not in OWN_FILES and not filename.startswith("<frozen"):
                last.append((frame, lineno))
        summary = _extract_frames(iter(last), lookup_lines=True)
        for fs in list(summary)[-frames:]:
            code = (fs.line or "").strip()
            if len(code) > 160:
                code = code[:160] + " ..."
            where = f"  {_show_path(fs.filename)}:{fs.lineno} in {fs.name}"
            lines.append(f"{where}: {code}" if code else where)
    except BaseException:
        pass
    return "\n".join(lines)


# ---------------------------------------------------------------- the module's attributes


def _loss_value(value, attr):
    """A loss as plain data: a name, or a mapping of str keys to str, number or bool values."""
    if isinstance(value, str):
        return value
    if isinstance(value, collections.abc.Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or not isinstance(v, (str, int, float, bool)):
                raise TypeError(
                    f"{attr}: a loss mapping holds str keys and str, number or bool values, got {k!r}: {v!r:.80}"
                )
            out[k] = v
        return out
    raise TypeError(
        f'{attr} must be a loss name such as "mse" or a mapping such as {{"kind": "squared"}}, got {type(value).__name__}'
    )


def attribute_names(value, attr):
    """SUPPORTED_ACTIVATIONS or SUPPORTED_LOSSES as a list of names (None if absent); TypeError
    with the fix for anything else. SUPPORTED_LOSSES may also hold loss mappings (DESIGN 2a)."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if attr == "SUPPORTED_LOSSES" and isinstance(value, collections.abc.Mapping):
        return [_loss_value(value, attr)]
    try:
        items = list(value)
    except TypeError:
        raise TypeError(
            f'{attr} must be a tuple of names such as ("sigmoid", "tanh"), got {type(value).__name__}'
        ) from None
    if attr == "SUPPORTED_LOSSES":
        return [_loss_value(v, attr) for v in items]
    if not all(isinstance(v, str) for v in items):
        raise TypeError(f"{attr} must contain names (str) only, got {items!r:.200}")
    return items


def describe(module):
    """The implementation module's optional attributes and which functions it defines."""
    layout = getattr(module, "LAYOUT", None)
    if layout is not None and not isinstance(layout, str):
        raise TypeError(f'LAYOUT must be a string such as "in_out", got {type(layout).__name__}')
    loss = getattr(module, "LOSS", None)
    targets = getattr(module, "TARGETS", None)
    if targets is not None and not isinstance(targets, str):
        raise TypeError(f'TARGETS must be a string such as "labels", got {type(targets).__name__}')
    return {
        "LOSS": None if loss is None else _loss_value(loss, "LOSS"),
        "TARGETS": targets,
        "has_supports": callable(getattr(module, "supports", None)),
        "SUPPORTED_ACTIVATIONS": attribute_names(
            getattr(module, "SUPPORTED_ACTIVATIONS", None), "SUPPORTED_ACTIVATIONS"
        ),
        "SUPPORTED_LOSSES": attribute_names(getattr(module, "SUPPORTED_LOSSES", None), "SUPPORTED_LOSSES"),
        "LAYOUT": layout,
        "has_gradients": callable(getattr(module, "gradients", None)),
        "has_train_step": callable(getattr(module, "train_step", None)),
    }


# ---------------------------------------------------------------- what the user returned


class BadOutput(Exception):
    pass


def _type_name(obj):
    try:
        return type(obj).__name__
    except BaseException:
        return "?"


def _to_array(obj, what):
    try:
        arr = _asarray(obj)
    except BaseException as exc:
        raise BadOutput(
            f"{what}: expected a numeric array, got {_type_name(obj)} that numpy "
            f"cannot convert ({exception_text(exc, frames=0)})"
        ) from None
    if not isinstance(arr, _ndarray):
        raise BadOutput(f"{what}: expected a numeric array, got {_type_name(obj)}")
    if arr.dtype.kind not in _NUMERIC_KINDS or arr.dtype.fields is not None:
        raise BadOutput(f"{what}: expected a numeric array, got {_type_name(obj)} (as an array: dtype {arr.dtype})")
    if not arr.flags.c_contiguous:
        arr = arr.copy(order="C")
    return arr


to_array = _to_array  # public names for the child's layer calls (child_layers.py)
type_name = _type_name


def _is_scalar(obj):
    if isinstance(obj, bool):
        return False
    if isinstance(obj, (int, float, _generic)):
        return True
    if isinstance(obj, _ndarray):
        return obj.size == 1
    return hasattr(obj, "__array__") and getattr(obj, "size", None) == 1 and not isinstance(obj, (list, tuple))


LOSS_DTYPES = ("float16", "float32", "float64")  # what a loss value is judged to (DESIGN 8)


def convert(result, nlayers, what):
    """(loss or None, [W1, b1, ..., WL, bL] as arrays, the loss's dtype name or None) from what
    the user returned. The loss's dtype is the one it came back in (a Python float is float64;
    an integer, or a float wider than float64, is judged as float64): the loss value is judged
    to its own precision, as each tensor is, never to the narrowest tensor's."""
    loss, loss_dtype = None, None
    if (
        isinstance(result, (tuple, list))
        and len(result) == 2
        and _is_scalar(result[0])
        and isinstance(result[1], (tuple, list))
    ):
        try:
            loss_arr = _asarray(result[0])
            if loss_arr.dtype.kind not in "biuf":
                raise TypeError(str(loss_arr.dtype))
            loss = float(loss_arr.reshape(-1)[0])
            loss_dtype = loss_arr.dtype.name if loss_arr.dtype.name in LOSS_DTYPES else "float64"
        except BaseException:
            raise BadOutput(f"the loss value: expected a real number, got {_type_name(result[0])}") from None
        result = result[1]
    if what == "gradients":
        expected = f"a list of {nlayers} (dW, db) pairs, one per layer, or (loss, that list)"
        names = ("dW", "db")
    else:
        expected = f"a list of {nlayers} new (W, b) pairs, one per layer"
        names = ("W", "b")
    if not isinstance(result, (tuple, list)):
        raise BadOutput(f"expected {expected}; got {_type_name(result)}")
    if len(result) != nlayers:
        raise BadOutput(f"expected {expected}; got a {_type_name(result)} of {len(result)} item(s)")
    arrays = []
    for layer, pair in enumerate(result, start=1):
        if isinstance(pair, dict):
            keys = [k for k in (("dW", "db"), ("W", "b")) if all(x in pair for x in k)]
            if keys:
                pair = (pair[keys[0][0]], pair[keys[0][1]])
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            got = _type_name(pair)
            if isinstance(pair, (tuple, list)):
                got += f" of {len(pair)} item(s)"
            raise BadOutput(f"layer {layer}: expected a ({names[0]}, {names[1]}) pair, got {got}")
        for name, obj in zip(names, pair):
            arrays.append(_to_array(obj, f"layer {layer} {name}"))
    return loss, arrays, loss_dtype
