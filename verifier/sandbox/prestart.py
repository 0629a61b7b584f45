"""A sandbox child started before the harness has imported what it needs, to be adopted later.

Starting a child costs an interpreter and numpy (about a tenth of a second), and so do the
harness's own imports; one after the other they are most of a small check's whole-process
time. `prestart` spawns a child (verifier/sandbox/limits.py: spawn, the same process, limits
and environment as any other) while the command line is still being read, so the two overlap
on a machine with two cores. The child does nothing until its init request arrives: its
namespaces, limits and privilege drop are set up then, as for a child started late, and no
user code has been read yet. The first Sandbox whose interpreter and namespace setting match
takes it (`take`); one nobody takes is killed when the harness exits, its directory removed.

Only this module imports the standard library and limits.py, so the command line can call it
before numpy and the rest of the harness are loaded.
"""

from __future__ import annotations

import atexit
import socket
import subprocess

from ..errors import VerifierError
from .limits import kill_group, release, spawn

Spawned = tuple[subprocess.Popen, dict[str, int], socket.socket, str]

_waiting: dict[tuple[str | None, bool], Spawned] = {}


def prestart(python: str | None = None, namespaces: bool = True) -> bool:
    """Start a child for a later Sandbox(python=..., namespaces=...); False if it could not be
    started (the Sandbox then starts its own, and reports the reason if that fails too)."""
    key = (python, bool(namespaces))
    if key in _waiting:
        return True
    try:
        _waiting[key] = spawn(python, namespaces)
    except VerifierError:
        return False
    if len(_waiting) == 1:
        atexit.register(discard)
    return True


def take(python: str | None, namespaces: bool) -> Spawned | None:
    """The waiting child started for this interpreter and setting, or None. A child that died
    while it waited is cleaned up and not given out."""
    spawned = _waiting.pop((python, bool(namespaces)), None)
    if spawned is not None and spawned[0].poll() is not None:
        _end(spawned)
        return None
    return spawned


def waiting() -> dict[tuple[str | None, bool], tuple[int, str]]:
    """(interpreter, namespaces) -> (pid, working directory) of each child not yet taken."""
    return {key: (spawned[0].pid, spawned[3]) for key, spawned in _waiting.items()}


def discard() -> None:
    """Kill every child nobody took (at exit, or when a run will not need one)."""
    while _waiting:
        _end(_waiting.popitem()[1])


def _end(spawned: Spawned) -> None:
    proc, fds, req_sock, workdir = spawned
    kill_group(proc)
    release(fds, req_sock, workdir)
