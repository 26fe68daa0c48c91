"""How an error that ends a command becomes its exit code: the one place, for typer's commands
(cli._Commands.invoke) and for `scan`'s typer-free fast path (__main__).

A FakescopeError carries its own code (`exit_code`: usage 2, detector 4, ...) and is said in one
line; Ctrl-C and SIGTERM give 130. A closed stdout ends the command quietly with 141 (click would
turn it into a silent 1, which reads as a tripped gate); a broken pipe anywhere else is a bug and
says so. Outcomes of a command that ran to its end are errors.outcome_exit_code's.

Standard library only at import: it runs before typer is imported, or without it.
"""

from __future__ import annotations

import os
import sys

from fakescope_cli.errors import EXIT_INTERRUPTED, EXIT_OUTPUT_CLOSED, FakescopeError

# What ending_exit_code knows how to end a command with; anything else propagates as it is.
COMMAND_ENDINGS = (FakescopeError, KeyboardInterrupt, BrokenPipeError)


def ending_exit_code(exc: FakescopeError | KeyboardInterrupt | BrokenPipeError) -> int:
    """Say on stderr why the command ends (nothing for a closed stdout) and return its exit code."""
    if isinstance(exc, FakescopeError):
        say_failure(exc.message)
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):  # any command but a scan past its start (which finishes its output first)
        say_failure("interrupted")
        return EXIT_INTERRUPTED
    if not stdout_reader_gone():
        raise RuntimeError(f"broken pipe inside fakescope: {exc}") from exc
    # Python flushes stdout at exit and would print a second BrokenPipeError about it.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OUTPUT_CLOSED


def say_failure(message: str) -> None:
    """One line on stderr: `fakescope: MESSAGE`."""
    from fakescope_cli.text import terminal_text

    # Messages quote servers, models and file names: none of them may steer the terminal.
    print(f"fakescope: {terminal_text(message)}", file=sys.stderr, flush=True)


def stdout_reader_gone() -> bool:
    """Is stdout a pipe whose reader closed it? (poll reports POLLERR for it; Linux and macOS)"""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _fd, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), or stdout is not a real file
        return False
