"""Expand command-line arguments into a deterministic stream of candidate files.

Rules (DESIGN.md, issue #2):
- files named explicitly are always analysed (a non-image becomes an error record, never dropped);
- folders are walked recursively (unless recursive=False), entries sorted by their byte names;
- in a folder, files that are plainly not images or videos (no image/video extension and no image
  or video signature) are counted and skipped; a file that claims to be one by name or leading
  bytes is analysed;
- directory symlinks are not followed unless follow_symlinks=True (then with loop detection);
- special files (FIFO, socket, device) are never opened: reported when named explicitly or when
  their name claims an image, otherwise counted as skipped;
- dangling symlinks and symlink loops are reported as error records;
- `-` reads paths from stdin (newline- or NUL-separated); glob patterns expand when no such path exists.
"""

from __future__ import annotations

import glob
import os
import stat
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from fakescope_cli.media import has_image_extension, sniff_format
from fakescope_cli.video_formats import has_video_extension, sniff_video

SNIFF_BYTES = 64
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Candidate:
    path: str  # str with surrogate escapes for undecodable names
    explicit: bool  # named on the command line or stdin, not found in a folder
    problem: tuple[str, str] | None = None  # (error code, message) known before opening


@dataclass
class InputStats:
    skipped: int = 0  # non-image files found in folders
    skipped_special: int = 0  # FIFOs/sockets/devices in folders without an image name
    skipped_by_ext: int = 0  # files excluded by --ext
    seen_dirs: int = 0
    notes: list[str] = field(default_factory=list)


def normalise_exts(exts: Iterable[str] | None) -> frozenset[str] | None:
    if not exts:
        return None
    out: set[str] = set()
    for item in exts:
        for part in item.split(","):
            part = part.strip().lower().lstrip(".")
            if part:
                out.add(part)
    return frozenset(out) or None


def read_stdin_paths(stream: BinaryIO | None = None, null_separated: bool = False) -> list[str]:
    """Paths listed on stdin, one per line (or NUL-separated with -0), as given."""
    raw = (stream if stream is not None else sys.stdin.buffer).read()
    sep = b"\0" if null_separated else b"\n"
    parts = raw.split(sep)
    paths = []
    for part in parts:
        if not null_separated:
            part = part.rstrip(b"\r")
        if part:
            paths.append(os.fsdecode(part))
    return paths


def _sort_key(name: str) -> bytes:
    return os.fsencode(name)


def has_evidence_extension(path: str) -> bool:
    """An image or video extension: a file named so is never silently skipped."""
    return has_image_extension(path) or has_video_extension(path)


def looks_like_image_file(path: str) -> bool:
    """True if the name or the leading bytes claim an image or a video. Only called on regular files."""
    if has_evidence_extension(path):
        return True
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False  # unreadable and not image-named: plainly not ours to report
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        head = os.read(fd, SNIFF_BYTES)
    except OSError:
        return False
    finally:
        os.close(fd)
    return sniff_format(head) is not None or sniff_video(head) is not None


class InputExpander:
    def __init__(
        self,
        *,
        recursive: bool = True,
        follow_symlinks: bool = False,
        exts: frozenset[str] | None = None,
    ) -> None:
        self.recursive = recursive
        self.follow_symlinks = follow_symlinks
        self.exts = exts
        self.stats = InputStats()

    def _ext_ok(self, path: str) -> bool:
        if self.exts is None:
            return True
        return os.path.splitext(path)[1].lower().lstrip(".") in self.exts

    def expand(self, args: Iterable[str]) -> Iterator[Candidate]:
        seen: set[str] = set()
        for arg in args:
            for cand in self._expand_arg(arg):
                # `ev/a.jpg` and `/abs/ev/a.jpg` are one file: reported once (no syscall per file)
                key = os.path.abspath(cand.path)
                if key in seen:
                    continue
                seen.add(key)
                yield cand

    def _expand_arg(self, arg: str) -> Iterator[Candidate]:
        if not os.path.lexists(arg) and _GLOB_CHARS & set(arg):
            matches = sorted(glob.glob(arg, recursive=True), key=_sort_key)
            if not matches:
                yield Candidate(arg, True, ("not-found", "no file matches this pattern"))
                return
            for match in matches:
                yield from self._expand_path(match, explicit=True)
            return
        yield from self._expand_path(arg, explicit=True)

    def _expand_path(self, path: str, *, explicit: bool) -> Iterator[Candidate]:
        try:
            lst = os.lstat(path)
        except FileNotFoundError:
            yield Candidate(path, explicit, ("not-found", "no such file or folder"))
            return
        except OSError as exc:
            yield Candidate(path, explicit, ("read-error", f"cannot stat: {exc.strerror or exc}"))
            return
        if stat.S_ISLNK(lst.st_mode):
            try:
                st = os.stat(path)
            except OSError as exc:
                import errno

                if exc.errno == errno.ELOOP:
                    yield Candidate(path, explicit, ("symlink-loop", "symbolic link loop"))
                else:
                    yield Candidate(path, explicit, ("dangling-symlink", "symbolic link target does not exist"))
                return
            if stat.S_ISDIR(st.st_mode):
                # A link named on the command line is followed: the user asked for it.
                if explicit or self.follow_symlinks:
                    yield from self._walk(path, {(st.st_dev, st.st_ino)})
                return
        else:
            st = lst
        if stat.S_ISDIR(st.st_mode):
            yield from self._walk(path, {(st.st_dev, st.st_ino)})
            return
        if stat.S_ISREG(st.st_mode):
            if explicit:
                yield Candidate(path, True)
            elif not self._ext_ok(path):
                self.stats.skipped_by_ext += 1
            elif looks_like_image_file(path):
                yield Candidate(path, False)
            else:
                self.stats.skipped += 1
            return
        # FIFO, socket, character or block device: never opened.
        if explicit or has_evidence_extension(path):
            kind = _special_kind(st.st_mode)
            yield Candidate(path, explicit, ("not-a-regular-file", f"{kind}; not opened"))
        else:
            self.stats.skipped_special += 1

    def _walk(self, folder: str, ancestors: set[tuple[int, int]]) -> Iterator[Candidate]:
        self.stats.seen_dirs += 1
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: _sort_key(e.name))
        except OSError as exc:
            yield Candidate(folder, True, ("read-error", f"cannot list folder: {exc.strerror or exc}"))
            return
        for entry in entries:
            path = entry.path
            try:
                is_link = entry.is_symlink()
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_link, is_dir = False, False
            if is_dir:
                if self.recursive:
                    st = entry.stat(follow_symlinks=False)
                    yield from self._walk(path, ancestors | {(st.st_dev, st.st_ino)})
                continue
            if is_link:
                try:
                    st = os.stat(path)
                except OSError:
                    # A broken link is reported only where an image was expected: a stale `build ->`
                    # link in a repository is no evidence, and must not turn a CI scan into exit 3.
                    if not self._ext_ok(path):
                        self.stats.skipped_by_ext += 1
                    elif has_evidence_extension(path):
                        yield from self._expand_path(path, explicit=False)
                    else:
                        self.stats.skipped += 1
                    continue
                if stat.S_ISDIR(st.st_mode):
                    if not (self.recursive and self.follow_symlinks):
                        continue
                    key = (st.st_dev, st.st_ino)
                    if key in ancestors:
                        yield Candidate(path, False, ("symlink-loop", "folder link points back to a parent folder"))
                        continue
                    yield from self._walk(path, ancestors | {key})
                    continue
            yield from self._expand_path(path, explicit=False)


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "not a regular file"
