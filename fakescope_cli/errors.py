"""Errors with stable codes: per-file error records and tool-level failures."""

from __future__ import annotations


class FakescopeError(Exception):
    """Base class; `code` is stable and appears in records and docs."""

    code = "error"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)


class InputError(FakescopeError):
    """A file that cannot be analysed. The scan records it and goes on.

    `facts` carries what was learnt about the file before it was refused (`bytes`, `mtime_ns`,
    `sha256`), so that its error record still holds the chain of custody it can.
    """

    code = "input-error"

    def __init__(self, message: str, code: str | None = None, facts: dict | None = None):
        super().__init__(message, code)
        self.facts = facts or {}


class DetectorUnavailable(FakescopeError):
    """A detector could not be loaded or reached (exit code 4)."""

    code = "detector-unavailable"


class UsageError(FakescopeError):
    """Bad arguments (exit code 2)."""

    code = "usage"


# Stable per-file error codes. Documented in README ("Error codes"); never renamed.
ERROR_CODES: dict[str, str] = {
    "not-found": "the path does not exist",
    "permission-denied": "the file could not be opened for reading",
    "not-a-regular-file": "a FIFO, socket or device; never opened",
    "dangling-symlink": "a symbolic link whose target does not exist",
    "symlink-loop": "a symbolic link that points back to itself",
    "empty-file": "the file has zero bytes",
    "file-too-large": "the file exceeds --max-bytes",
    "unsupported-format": "the bytes are not an image format fakescope reads",
    "truncated": "the image or video data ends early",
    "corrupt-image": "the image data cannot be decoded",
    "pixel-limit": "width x height exceeds --max-pixels (decompression-bomb guard)",
    "corrupt-video": "the video container or stream cannot be decoded",
    "no-video-stream": "the container holds no video stream (audio only, or damaged)",
    "duration-limit": "the video declares a duration over a day (a forged or endless stream)",
    "read-error": "the operating system reported an error while reading",
    "timeout": "analysis exceeded --file-timeout",
    "detector-error": "the detector failed on this file",
    "internal-error": "a bug in fakescope; please report it",
}

# Process exit codes (DESIGN.md). 1 wins over 3 when both apply.
EXIT_OK = 0
EXIT_GATE = 1
EXIT_USAGE = 2
EXIT_INCOMPLETE = 3
EXIT_DETECTOR = 4
EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell convention
# The reader of stdout went away (`| head`): what a Unix tool killed by SIGPIPE reports (128 + 13). Not 1,
# which a CI script reads as a tripped gate.
EXIT_OUTPUT_CLOSED = 141
