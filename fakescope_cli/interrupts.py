"""Ctrl-C and SIGTERM: one handler, installed before anything slow is imported.

A signal that arrives while the command is starting (imports, argument parsing, and for `scan` the
walk of its inputs and the loading of its detector) is *held*: `scan` stops at its first record, so
that even a SIGTERM 0.2 s after start leaves a finished document marked interrupted, never a process
killed mid-import (exit 143, no output). Inside `interruptible()` a signal raises KeyboardInterrupt
at once, and one held earlier is raised on entry. A second signal while one is held stops at once:
whoever presses Ctrl-C twice means it. Either way the exit code is 130 (cli maps it).

This module imports nothing but the standard library: it runs before typer is imported.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_installed = False  # install() ran: this process is the fakescope command, not a library user
_active = False  # the handler is in place: install() ran, or inside held()
_raising = False  # a signal raises KeyboardInterrupt now (else it is held)
_held: int | None = None  # the signal received while holding, not yet delivered


def _handler(signum: int, frame: FrameType | None) -> None:
    global _held
    if _raising or _held is not None:
        _held = None
        raise KeyboardInterrupt
    _held = signum


def install() -> None:
    """Route Ctrl-C and SIGTERM through the handler, holding them until the command can stop in order."""
    global _installed, _active
    try:
        for sig in STOP_SIGNALS:
            signal.signal(sig, _handler)
    except ValueError:  # not the main thread: leave the defaults
        return
    _installed = _active = True


def is_command() -> bool:
    """install() ran: this process is the fakescope command, not a library user or a test in process."""
    return _installed


def stop_holding() -> None:
    """From now on a signal stops the command at once; one held since start-up does so now.
    Every command but `scan` calls this as it starts (scan holds until its output has begun)."""
    global _raising, _held
    if not _active:
        return
    _raising = True
    if _held is not None:
        _held = None
        raise KeyboardInterrupt


@contextmanager
def held() -> Iterator[None]:
    """Within: a signal is held until stop_holding() (a scan calls it once its output has begun).

    Where install() already ran this changes nothing; elsewhere (run_scan called as a library, tests
    in process) the handler is put in place for the block and the previous handlers come back after.
    """
    global _active, _raising, _held
    if _active:
        yield
        return
    try:
        previous_handlers = {sig: signal.signal(sig, _handler) for sig in STOP_SIGNALS}
    except ValueError:  # not the main thread: signals are not ours to take
        yield
        return
    _active, _raising, _held = True, False, None
    try:
        yield
    finally:
        _active, _raising, _held = False, False, None
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)


@contextmanager
def interruptible() -> Iterator[None]:
    """Within: Ctrl-C and SIGTERM raise KeyboardInterrupt at once (a held one on entry).

    Where install() never ran (fakescope used as a library, tests in process) the handler is put in
    place for the block and the previous handlers come back after it.
    """
    global _raising, _held
    previous_handlers = {}
    if not _active:
        try:
            previous_handlers = {sig: signal.signal(sig, _handler) for sig in STOP_SIGNALS}
        except ValueError:  # not the main thread: signals are not ours to take
            previous_handlers = {}
    was_raising = _raising
    _raising = True
    try:
        if _held is not None:
            _held = None
            raise KeyboardInterrupt
        yield
    finally:
        _raising = was_raising
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
