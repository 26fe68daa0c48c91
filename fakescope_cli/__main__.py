"""`python -m fakescope_cli` and the `fakescope` command: signals first, then everything else."""

import gc
import os
import sys

from fakescope_cli import interrupts

# Set (non-empty) to parse `scan` with typer too: tests compare the two paths with it.
NO_FAST_PATH_ENV = "FAKESCOPE_NO_FAST_PATH"


def main() -> None:
    # Before typer, rich or any detector is imported: a SIGTERM during start-up must not kill the
    # process half-way (exit 143, no output); see interrupts.py.
    interrupts.install()
    try:
        scan_params = _fast_scan_params(sys.argv[1:])
        if scan_params is not None:
            sys.exit(_run_scan(scan_params))
        from fakescope_cli.cli import main as cli_main

        cli_main()
    finally:
        # The command is done (its output written, files closed, workers joined). At exit Python's
        # last garbage collections would walk every object of every module loaded, ~15 ms of a
        # one-file scan, for memory the process gives back anyway: they are left alone.
        gc.freeze()


def _fast_scan_params(args: list[str]) -> dict[str, object] | None:
    """scan_command's keywords for a `scan` command line that scan_argv reads as typer would; None
    for any other command line (typer then parses it: ~13 ms more of a one-file scan)."""
    if not args or args[0] != "scan" or os.environ.get(NO_FAST_PATH_ENV):
        return None
    from fakescope_cli import scan_argv

    return scan_argv.parse(args[1:])


def _run_scan(params: dict[str, object]) -> int:
    """`fakescope scan` without typer, ending as typer's commands end (command_exit)."""
    from fakescope_cli.command_exit import COMMAND_ENDINGS, ending_exit_code
    from fakescope_cli.scan_command import scan_command

    try:
        return scan_command(**params)
    except COMMAND_ENDINGS as exc:
        return ending_exit_code(exc)


if __name__ == "__main__":
    main()
