"""One request/reply round trip between the Sandbox and its child, over the child's channels.

A child has three channels: requests on a socket (sent with MSG_NOSIGNAL, so a dead child can
never SIGPIPE the harness), replies on a pipe (frames as in `verifier/sandbox/protocol.py`), and its
stdout and stderr on a third pipe, drained and capped here so that a flood of prints can
neither block the child nor fill the harness's memory. A round trip ends with a complete,
validated reply, or with `Broken` on the deadline, the CPU budget, the child's death or
garbage; the Sandbox then kills the child. What a broken round trip means for the call (a
row, or a retry on a fresh child) is decided in verifier/sandbox/parent.py, not here.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import time
from collections.abc import Callable

import numpy as np

from ..errors import VerifierError
from .limits import cpu_seconds, death
from .protocol import Broken, ReplyParser, frame

FLOOD = 100  # a call that prints this many times the kept output is stopped at once


class Exchange:
    """The round trip, as methods of the Sandbox.

    Uses the Sandbox's current child (`_proc`, its ends `_fds` and `_req_sock`), its request
    counter `_seq`, its capture of the last call's output (`_out`, `_out_total`) and its
    `output_limit` and `cpu_seconds`, all read at each exchange."""

    _proc: subprocess.Popen | None
    _cpu_pid: int | None
    _fds: dict[str, int]
    _req_sock: socket.socket | None
    _seq: int
    _out: bytearray
    _out_total: int
    output_limit: int
    cpu_seconds: float | None

    def _exchange(
        self,
        header: dict,
        arrays: list[np.ndarray],
        timeout: float,
        reply_cap: int,
        kinds: tuple[str, ...],
        meanwhile: Callable[[], object] | None = None,
    ) -> tuple[dict, list[np.ndarray]]:
        """Send one request, wait for its reply. Raises Broken on timeout, death or garbage.

        `meanwhile()`, if given, is run once the whole request is sent: the harness's own work
        done while the child works (it must not raise). Its time is added to the deadline, so
        it never counts as the child's."""
        proc = self._proc
        if proc is None:  # callers start the child first; say so rather than crash later
            raise VerifierError("internal: a sandbox exchange without a running child")
        fds = self._fds
        self._seq += 1
        pending = frame(header, self._seq, arrays)

        # Output printed between calls (e.g. from a signal handler) is dropped.
        self._drain_output(keep=False)
        self._out = bytearray()
        self._out_total = 0

        parser = ReplyParser(self._seq, reply_cap, kinds)
        poller = select.poll()
        poller.register(fds["rep_r"], select.POLLIN)
        poller.register(fds["out_r"], select.POLLIN)
        poller.register(fds["req_w"], select.POLLOUT)
        try:
            self._wait(proc, poller, parser, pending, time.monotonic() + timeout, timeout, meanwhile)
        except Broken as exc:
            exc.before_call = bool(pending)
            raise
        finally:
            try:
                poller.unregister(fds["req_w"])
            except (KeyError, ValueError):
                pass
        self._drain_output(keep=True)
        if parser.header is None:  # _wait returns only on a whole reply
            raise VerifierError("internal: a sandbox exchange ended without a reply")
        return parser.header, parser.arrays

    def _wait(
        self,
        proc: subprocess.Popen,
        poller,
        parser: ReplyParser,
        pending: list[memoryview],
        deadline: float,
        timeout: float,
        meanwhile: Callable[[], object] | None = None,
    ) -> None:
        """Send `pending` and read output and the reply until the reply is complete; run
        `meanwhile` once all of `pending` is sent (see _exchange)."""
        fds = self._fds
        out_open = True
        writing = True
        cpu_pid = self._cpu_pid or proc.pid
        cpu0 = cpu_seconds(cpu_pid) if self.cpu_seconds is not None else None
        while True:
            now = self._within_budget(cpu_pid, deadline, timeout, cpu0)
            events = poller.poll(max(1, int(min(deadline - now, 0.1) * 1000)))
            rep_eof = False
            for fd, _ev in events:
                if fd == fds["req_w"] and writing:
                    if not self._send(proc, pending):
                        writing = False
                        poller.unregister(fd)
                        if meanwhile is not None and not pending:
                            began = time.monotonic()
                            meanwhile()
                            meanwhile = None
                            deadline += time.monotonic() - began
                elif fd == fds["out_r"] and out_open:
                    if not self._read_output():
                        out_open = False
                        poller.unregister(fd)
                    if self._out_total > FLOOD * self.output_limit:  # printing without end: a verdict now
                        raise Broken(
                            "timeout",
                            f"printed more than {FLOOD * self.output_limit / 1e6:g} MB of output in one call "
                            "(output without end); the process group was killed",
                        )
                elif fd == fds["rep_r"]:
                    if not self._read_reply(parser):
                        rep_eof = True
                        poller.unregister(fd)
                if parser.done:
                    return
            if rep_eof or proc.poll() is not None:
                self._last_reply(proc, parser)
                return

    def _within_budget(self, cpu_pid: int, deadline: float, timeout: float, cpu0: float | None) -> float:
        """The time now; Broken("timeout") once the deadline or the CPU budget is passed."""
        now = time.monotonic()
        if now >= deadline:
            raise Broken("timeout", f"no answer within {timeout:g} s; the process group was killed")
        if cpu0 is not None and self.cpu_seconds is not None:
            used = cpu_seconds(cpu_pid)
            if used is not None and used - cpu0 > self.cpu_seconds:
                raise Broken(
                    "timeout", f"used more than {self.cpu_seconds:g} s of CPU time; the process group was killed"
                )
        return now

    def _send(self, proc: subprocess.Popen, pending: list[memoryview]) -> bool:
        """Send what the socket takes now; False when there is no more to send (all sent, or
        the child died, which the caller notices)."""
        sock = self._req_sock
        if sock is None:
            return False
        try:
            while pending:
                k = sock.send(pending[0][: 1 << 20], socket.MSG_NOSIGNAL)
                pending[0] = pending[0][k:]
                if not len(pending[0]):
                    pending.pop(0)
        except BlockingIOError:
            pass
        except OSError:
            if proc.poll() is None:
                raise Broken(
                    "exited", "the sandbox process stopped reading requests (it closed the harness's channel)"
                ) from None
            return False
        return bool(pending)

    def _last_reply(self, proc: subprocess.Popen, parser: ReplyParser) -> None:
        """The child is dead or closed the reply pipe: take what is there, else give up."""
        self._read_reply(parser)
        if parser.done:
            return
        try:
            proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            pass
        self._drain_output(keep=True)
        raise Broken("exited", death(proc.returncode))

    def _quiet(self) -> bool:
        """True when nothing is waiting on the reply pipe between two calls."""
        try:
            return os.read(self._fds["rep_r"], 1) is None
        except BlockingIOError:
            return True
        except OSError:
            return False

    def _read_reply(self, parser: ReplyParser) -> bool:
        """Read what is available into the parser; False on end of file."""
        return parser.read_from(self._fds["rep_r"])

    def _read_output(self) -> bool:
        """Read a bounded amount of captured output; False on end of file."""
        for _ in range(16):
            try:
                data = os.read(self._fds["out_r"], 1 << 16)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not data:
                return False
            self._keep_output(data)
        return True

    def _keep_output(self, data: bytes) -> None:
        self._out_total += len(data)
        room = self.output_limit - len(self._out)
        if room > 0:
            self._out += data[:room]

    def _drain_output(self, keep: bool) -> None:
        fd = self._fds.get("out_r")
        if fd is None:
            return
        for _ in range(64):  # bounded: a child may keep printing from a signal handler
            try:
                data = os.read(fd, 1 << 16)
            except (BlockingIOError, OSError):
                return
            if not data:
                return
            if keep:
                self._keep_output(data)
