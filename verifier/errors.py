"""Every error the harness raises; each subclasses the matching builtin and says the fix."""

from __future__ import annotations


class VerifierError(Exception):
    """Base of the harness's own errors: the harness could not do its job (exit 2)."""

    exit_code = 2


class SpecError(VerifierError, ValueError):
    """A network spec, case file or command-line argument that cannot be used."""


class ImplementationError(VerifierError, ImportError):
    """A user implementation that cannot be loaded or has no `gradients`."""


class IsolationError(VerifierError, OSError):
    """--require-isolation on a machine that cannot isolate the code under test fully."""


class ReferenceDisagreement(VerifierError, ArithmeticError):
    """Two references disagree beyond their error model: a harness bug, not the user's."""

    def __init__(self, message, failures=()):
        super().__init__(message)
        self.failures = tuple(failures)


class GradientMismatch(AssertionError):
    """Raised by `assert_gradients_close` with the short report as its message."""

    def __init__(self, message, result=None):
        super().__init__(message)
        self.result = result


def harness_bug(exc: BaseException) -> str:
    """The words for an exception the harness did not expect: its type, its message, and whose
    fault it is (never the checked code's)."""
    return f"internal error {type(exc).__name__}: {exc}: a harness bug, please report it"


class UnsafeOutputError(SpecError):
    """An output path the harness refuses to write through: a link, a FIFO or another
    non-regular file at it, a directory owned by another user, or a baseline whose digest does
    not match what the gate recorded."""
