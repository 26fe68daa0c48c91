"""Where reports go: checked before any work, written so that a reader never sees half a document,
and never over an input, a link or a device."""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TextIO

from fakescope_cli.errors import UsageError
from fakescope_cli.media import display_path

# Names under which a shell hands a command its own stdout: written to as stdout, never reopened
# (reopening a file redirected with >> would truncate it, a temp-file rename would replace it).
_STDOUT_NAMES = frozenset({"-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"})


def is_stdout(output: str | None) -> bool:
    return output is None or output in _STDOUT_NAMES


def check_output_target(output: str | None, inputs: Iterable[str], flag: str = "-o") -> None:
    """Refuse, before any work, an output that would fail only at the end or that names an input."""
    if is_stdout(output):
        return
    assert output is not None
    if output.endswith(("/", os.sep)) or os.path.isdir(output):
        # `-o photo.jpg/` would otherwise be read as the file photo.jpg and replace it
        raise UsageError(f"{flag} {output}: names a folder; name the report file")
    real = os.path.realpath(output)
    if os.path.exists(real) and not stat.S_ISREG(os.stat(real).st_mode):
        return  # /dev/null, a FIFO: written in place (output_stream), never one of the images
    folder = os.path.dirname(real)
    if not os.path.isdir(folder):
        raise UsageError(f"{flag} {output}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{flag} {output}: cannot write in {folder}")
    refuse_overwriting_inputs(output, inputs, flag)


def refuse_overwriting_inputs(output: str, inputs: Iterable[str], flag: str = "-o") -> None:
    """An output that is one of the inputs is refused: a report written over the evidence it describes
    (arguments swapped, `-o photo.jpg photo.jpg`) would destroy it. Device and inode also catch links
    and other spellings of a path."""
    try:
        target = os.stat(os.path.realpath(output))
    except OSError:
        return  # a new file cannot be one of the inputs
    for path in inputs:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
            raise UsageError(f"{flag} {output}: is one of the inputs ({display_path(path)}); fakescope never "
                             "writes over its input")


def refuse_overwriting_images_in(output: str, folders: Iterable[str], flag: str = "-o") -> None:
    """An existing image inside a scanned folder is refused as an output even when it is not being
    scanned (left out by --ext, or in another --shard): it is evidence all the same. A non-image file
    there (an earlier report) may be replaced."""
    from fakescope_cli.inputs import looks_like_image_file

    real = os.path.realpath(output)
    if not os.path.isfile(real):
        return
    for folder in folders:
        root = os.path.join(os.path.realpath(folder), "")
        if real.startswith(root) and looks_like_image_file(real):
            raise UsageError(f"{flag} {output}: is an image inside the scanned folder {folder}; fakescope never "
                             "writes over evidence")


def refuse_same_outputs(outputs: Iterable[tuple[str, str | None]]) -> None:
    """Two outputs of one command naming the same file would leave only the last one written."""
    seen: dict[str, str] = {}
    for flag, output in outputs:
        if is_stdout(output):
            continue
        assert output is not None
        real = os.path.realpath(output)
        if real in seen:
            raise UsageError(f"{seen[real]} and {flag} name the same file ({output})")
        seen[real] = flag


# What a failing write reports (full disk, quota, read-only file system, I/O error, file too big);
# other OSErrors in a scan's body are not the report's and pass through unchanged.
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EFBIG, errno.EACCES,
                           errno.EPERM, errno.ENOENT, errno.EISDIR, errno.ENOTDIR})


@contextmanager
def _writing(where: str, stdout: bool = False) -> Iterator[None]:
    """A report that cannot be written is a problem with -o or stdout, told in one line (exit 2),
    not a traceback with exit 1, which a CI script would read as a tripped gate."""
    try:
        yield
    except BrokenPipeError:
        if stdout:
            raise  # the reader of stdout went away: the CLI's own exit 141
        raise UsageError(f"{where}: the reader went away before the report was written") from None
    except OSError as exc:
        if exc.errno not in _WRITE_ERRNOS:
            raise
        raise UsageError(f"{where}: cannot write: {exc.strerror or exc}") from None


@contextmanager
def output_stream(output: str | None, fmt: str, flag: str = "-o") -> Iterator[TextIO]:
    """stdout, or a file. Whole-document formats go through a temp file renamed at the end, so a
    reader never sees half a JSON/SARIF document; streaming formats write in place."""
    if is_stdout(output):
        with _writing("standard output", stdout=True):
            yield sys.stdout
            sys.stdout.flush()
        return
    assert output is not None
    # A link is written through, not replaced; a device or FIFO (/dev/null, a pipe) cannot be
    # renamed over, and must not be: it is written in place like a streaming format.
    real = os.path.realpath(output)
    existing = os.stat(real) if os.path.exists(real) else None
    special = existing is not None and not stat.S_ISREG(existing.st_mode)
    where = f"{flag} {output}"
    if fmt in ("jsonl", "csv") or special:
        with _writing(where):
            with open(output, "w", encoding="utf-8", newline="") as fh:
                yield fh
        return
    import tempfile  # only when writing a file: ~1.5 ms of a one-file scan to stdout

    with _writing(where):
        fd, tmp = tempfile.mkstemp(prefix=".fakescope-", suffix=".tmp", dir=os.path.dirname(real))
    if existing is not None:
        mode = stat.S_IMODE(existing.st_mode)  # a private report stays private when rewritten
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask  # a report is shared like any file, not private like mkstemp's 0600
    os.fchmod(fd, mode)
    try:
        with _writing(where):
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                yield fh
            os.replace(tmp, real)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
