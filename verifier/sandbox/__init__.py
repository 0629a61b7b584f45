"""Isolation (DESIGN sections 3 and 8): the user's code runs in a separate, limited child.

parent.py        the Sandbox: the harness's side of every call, and what each comes to
protocol.py      the data-only wire protocol and the validation of what the child sends
exchange.py      one round trip over the child's channels, with timeout and CPU budget
limits.py        starting the child with its limits, and killing its process group
child*.py        the child itself, run by path (standard library and numpy only)
inprocess.py     the same interface for a Python function, in this process (no containment)
"""

from __future__ import annotations

from .inprocess import InProcess
from .parent import Sandbox

__all__ = ["InProcess", "Sandbox"]
