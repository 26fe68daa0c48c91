"""Errors with stable codes: per-file error records and tool-level failures."""

from __future__ import annotations

# Process exit codes (DESIGN.md). Each error class below carries its own as `exit_code`; the command
# line maps an escaped exception to its code in one place (command_exit.ending_exit_code).
EXIT_OK = 0
EXIT_GATE = 1
EXIT_USAGE = 2
EXIT_INCOMPLETE = 3
EXIT_DETECTOR = 4
EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell convention
# The reader of stdout went away (`| head`): what a Unix tool killed by SIGPIPE reports (128 + 13). Not 1,
# which a CI script reads as a tripped gate.
EXIT_OUTPUT_CLOSED = 141


def outcome_exit_code(*, gate_tripped: bool = False, unanalysed: int = 0, interrupted: bool = False) -> int:
    """The exit code of a command that ran to its end (scan, merge, eval): the one rule for all three.

    Interrupted wins (the output is partial); a tripped gate (1) wins over unanalysed input (3), so a
    CI script that checks for 1 is never told "all clear" because one file was also unreadable.
    Usage (2), detector (4) and closed-output (141) failures are exceptions, mapped at the top.
    """
    if interrupted:
        return EXIT_INTERRUPTED
    if gate_tripped:
        return EXIT_GATE
    if unanalysed:
        return EXIT_INCOMPLETE
    return EXIT_OK


class FakescopeError(Exception):
    """Base class; `code` is stable and appears in records and docs."""

    code = "error"
    exit_code = EXIT_USAGE  # the process exit code when this error ends a command

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
    exit_code = EXIT_INCOMPLETE  # ends a command only where one file is the whole input (`ask`)

    def __init__(self, message: str, code: str | None = None, facts: dict | None = None):
        super().__init__(message, code)
        self.facts = facts or {}


class DetectorUnavailable(FakescopeError):
    """A detector could not be loaded or reached (exit code 4)."""

    code = "detector-unavailable"
    exit_code = EXIT_DETECTOR


class UsageError(FakescopeError):
    """Bad arguments, or an input or output the command cannot use (exit code 2)."""

    code = "usage"
    exit_code = EXIT_USAGE


class Interrupted(FakescopeError):
    """Ctrl-C or SIGTERM, with a word on what to do next (e.g. "resume with --resume"); exit code 130.
    A bare KeyboardInterrupt maps to the same code."""

    code = "interrupted"
    exit_code = EXIT_INTERRUPTED


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
