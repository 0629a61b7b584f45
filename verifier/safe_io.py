"""Every file the harness writes goes through here, so nothing planted at a path redirects it.

The checked code may run beside the outputs (the same directory, or as another user when the
harness is root): it can plant a symbolic link where a report is about to go (root would then
overwrite whatever the link names), a FIFO (an open for writing blocks for ever), or create a
class run's output directory first (so that it owns what root writes into it). So:

- a file is written to a fresh temporary name in the target's own directory, created with
  O_CREAT|O_EXCL|O_NOFOLLOW (never an existing file, never through a link), then renamed over
  the target: rename replaces a name, it never follows it, and a reader sees the old file or
  the whole new one;
- an existing link, FIFO, device, socket or directory at the target is refused before that,
  with the fix, rather than silently replaced: something planted it;
- an output directory (`output_dir`) must be a real directory owned by this user, never a link;
  files written into it (`write_text(..., own_dir=True)`) check that again on the directory
  descriptor they write through, so the directory cannot be swapped between the check and the
  write.

`sha256_of` and `digest_line` are the digests the gate keeps beside its baseline.

A submission's file name is text the checked code's author chose too (a class run of `*.py`):
`shown_name` is how a report or terminal shows it (each control character as its visible
escape, so the name stays recognisable and distinct), `file_stem` the name a file written for
it gets (no control character, no separator, no leading dot), and `shell_word` how a replay
command names it (shell-quoted; a name with control characters in bash's $'...' form, which
pastes back to the very file).

`clean_text` is the text side of the same rule: what the checked code says (its exception
text, what it printed) is cleaned once, where it enters the records (judge/rows.py's `row`,
a class run's error row, the command line's error line), so no report format and no terminal
or CI log shows it anything but inert: no terminal escape sequence (a faked PASS), no other
control character, and no line a CI runner reads as a workflow command (`::error::`).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shlex
import stat

from .errors import UnsafeOutputError

__all__ = [
    "WORKFLOW_PREFIX",
    "clean_text",
    "digest_line",
    "file_stem",
    "output_dir",
    "read_digest",
    "read_regular",
    "refuse_planted",
    "sha256_of",
    "shell_word",
    "shown_name",
    "write_text",
]

# ESC sequences, whole: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), and two-character ones
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?")
# every other C0 control but \n and \t, DEL, C1, and the bidirectional overrides (text that
# reads differently on screen than in the file)
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_COMMAND = re.compile(r"^(\s*)(?=::)", re.MULTILINE)
WORKFLOW_PREFIX = "[user] "  # before a line that would read as a CI workflow command


def clean_text(text) -> str:
    """`text` without terminal escape sequences or control characters (newlines and tabs kept),
    each line that starts with `::` (a GitHub Actions workflow command) prefixed so it is
    inert. Idempotent."""
    text = _CONTROLS.sub("", _ESCAPES.sub("", str(text)))
    return _COMMAND.sub(lambda m: m.group(1) + WORKFLOW_PREFIX, text)


def _visible(c: str, byte_limit: int = 0x100) -> str:
    """The escape that shows `c`: \\n, \\t, \\r, \\xNN below `byte_limit`, else \\uNNNN (in bash's
    $'...' a \\xNN is one raw byte, so a C1 character there must be \\u00NN, its UTF-8)."""
    n = ord(c)
    return {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(c) or (f"\\x{n:02x}" if n < byte_limit else f"\\u{n:04x}")


_NAME_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def shown_name(name) -> str:
    """A file name (or any one-line text the user chose) as a report shows it: each control
    character, escape and bidirectional override as its visible escape (ESC as \\x1b, a newline
    as \\n), and a leading `::` prefixed, so it is one inert line. Unchanged when it has none."""
    text = _NAME_CONTROLS.sub(lambda m: _visible(m.group()), str(name))
    return _COMMAND.sub(lambda m: m.group(1) + WORKFLOW_PREFIX, text)


def file_stem(name, default: str = "impl") -> str:
    """The stem of a file written for `name` (a path's base name without its extension): each
    control character as its visible escape with `_` for the backslash (ESC as `_x1b`, the same
    for a name and its shown_name), no backslash, no leading dot (no hidden file, never `..`);
    `default` when nothing is left."""
    stem = os.path.splitext(os.path.basename(str(name).rstrip("/")))[0]
    stem = _NAME_CONTROLS.sub(lambda m: _visible(m.group()), stem).replace("\\", "_").lstrip(".")
    return stem or default


def shell_word(text) -> str:
    """`text` as one word of a shell command line: as it is when nothing needs quoting, single-
    quoted when something does, in bash's $'...' form (control characters as escapes, never raw)
    when it holds a control character."""
    text = str(text)
    if not _NAME_CONTROLS.search(text):
        return shlex.quote(text)
    body = "".join(
        "\\\\" if c == "\\" else "\\'" if c == "'" else _visible(c, 0x80) if _NAME_CONTROLS.match(c) else c
        for c in text
    )
    return f"$'{body}'"


_KINDS = {
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a directory",
}


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def write_text(path, text: str, *, own_dir: bool = False, what: str = "output") -> str:
    """Write `text` (UTF-8) to `path` as a new file renamed into place; returns str(path).

    UnsafeOutputError (exit 2, saying the fix) when something other than a regular file is at
    `path`, or, with `own_dir`, when its directory is a link or not this user's."""
    path = os.fspath(path)
    parent, name = os.path.split(path)
    parent = parent or "."
    if not name:
        raise UnsafeOutputError(f"the {what} path {path!r} names a directory, not a file: give a file name")
    flags = os.O_RDONLY | os.O_DIRECTORY | (os.O_NOFOLLOW if own_dir else 0)
    try:
        dir_fd = os.open(parent, flags)
    except OSError as exc:
        raise UnsafeOutputError(_dir_problem(parent, exc, what)) from None
    try:
        if own_dir:
            _check_owned(parent, os.fstat(dir_fd), what)
        _check_target(path, name, dir_fd, what)
        _replace(dir_fd, name, text.encode("utf-8"), path, what)
    finally:
        os.close(dir_fd)
    return path


def refuse_planted(path, *, what: str = "output") -> None:
    """Before a long run: UnsafeOutputError now when something other than a regular file (a
    link, a FIFO, a directory) is at the output `path` (standard output, None or -, is fine).
    `write_text` checks again when it writes."""
    if path in (None, "-"):
        return
    path = os.fspath(path)
    parent, name = os.path.split(path)
    try:
        dir_fd = os.open(parent or ".", os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise UnsafeOutputError(_dir_problem(parent or ".", exc, what)) from None
    try:
        _check_target(path, name, dir_fd, what)
    finally:
        os.close(dir_fd)


def output_dir(path, *, what: str = "output directory", create: bool = True) -> str:
    """Make sure `path` is a directory of this user's (created when missing, its parents too,
    unless not `create`): an existing link, a non-directory, or a directory owned by another
    user is refused."""
    path = os.fspath(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        if not create:
            return path
        parent = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(parent, exist_ok=True)
            os.mkdir(path)
        except FileExistsError:
            pass  # someone made it meanwhile: judged below like any existing one
        except OSError as exc:
            raise UnsafeOutputError(f"cannot create the {what} {path}: {exc.strerror}") from None
        st = os.lstat(path)
    except OSError as exc:
        raise UnsafeOutputError(f"cannot use the {what} {path}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeOutputError(
            f"the {what} {path} is {_kind(st.st_mode)}, not a directory: remove it (something may have "
            "planted it) or give another directory"
        )
    _check_owned(path, st, what)
    return path


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest_line(data: bytes, name: str) -> str:
    """The line `sha256sum` writes for `data` saved as `name` (so `sha256sum -c` checks it too)."""
    return f"{sha256_of(data)}  {name}\n"


def read_regular(path, *, what: str = "file", limit: int = 64 << 20) -> bytes:
    """The bytes of the regular file at `path` (FileNotFoundError when there is none); a FIFO,
    device or directory there is refused without blocking on it."""
    path = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UnsafeOutputError(f"cannot read the {what} {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise UnsafeOutputError(f"the {what} {path} is {_kind(mode)}, not a regular file: remove it")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise UnsafeOutputError(f"the {what} {path} is larger than {limit >> 20} MB: not one this tool wrote")
    return data


def read_digest(path) -> str | None:
    """The hex digest of a `sha256sum` line at `path`; None when there is no such file. Only a
    regular file is read (a FIFO planted there would block the read)."""
    try:
        words = read_regular(path, what="digest", limit=4096).decode("ascii", "replace").split()
    except FileNotFoundError:
        return None
    digest = words[0].lower() if words else ""
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        return ""
    return digest


def _check_owned(path: str, st: os.stat_result, what: str) -> None:
    me = os.geteuid()
    if st.st_uid != me:
        raise UnsafeOutputError(
            f"the {what} {path} belongs to another user (uid {st.st_uid}, this run is uid {me}): "
            "something else made it, maybe the checked code; remove it or give a directory of your own"
        )


def _check_target(path: str, name: str, dir_fd: int, what: str) -> None:
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UnsafeOutputError(f"cannot write the {what} {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeOutputError(
            f"the {what} path {path} is {_kind(st.st_mode)}, not a regular file: refusing to write "
            "through it (something may have planted it); remove it or give another path"
        )


def _replace(dir_fd: int, name: str, data: bytes, path: str, what: str) -> None:
    tmp = f".{name}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666, dir_fd=dir_fd)
    except OSError as exc:
        raise UnsafeOutputError(f"cannot write the {what} {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException as exc:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise UnsafeOutputError(f"cannot write the {what} {path}: {exc.strerror}") from None
        raise


def _dir_problem(parent: str, exc: OSError, what: str) -> str:
    if os.path.islink(parent):
        return (
            f"the directory of the {what}, {parent}, is a symbolic link: refusing to write through it "
            "(something may have planted it); remove it or give another directory"
        )
    if isinstance(exc, FileNotFoundError):
        return f"cannot write the {what}: no directory {parent}; create it or give another path"
    if isinstance(exc, NotADirectoryError):
        return f"cannot write the {what}: {parent} is not a directory"
    return f"cannot write the {what} into {parent}: {exc.strerror}"
