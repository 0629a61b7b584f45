"""Isolation (DESIGN sections 3 and 8): the user's code runs in a separate, limited child.

parent.py        the Sandbox: the harness's side of every call, and what each comes to
protocol.py      the data-only wire protocol and the validation of what the child sends
exchange.py      one round trip over the child's channels, with timeout and CPU budget
limits.py        starting the child with its limits, and killing its process group
child*.py        the child itself, run by path (standard library and numpy only)
inprocess.py     the same interface for a Python function, in this process (no containment)
prestart.py      a child started while the command line is read, for the first Sandbox

The two classes are loaded on first use, so that the command line can start a child
(prestart.py) before numpy and the rest of the harness are imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .inprocess import InProcess
    from .parent import Sandbox

__all__ = ["InProcess", "Sandbox"]
_WHERE = {"InProcess": "inprocess", "Sandbox": "parent"}


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
