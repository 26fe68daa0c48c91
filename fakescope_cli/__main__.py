"""`python -m fakescope_cli` and the `fakescope` command: signals first, then everything else."""

import gc

from fakescope_cli import interrupts


def main() -> None:
    # Before typer, rich or any detector is imported: a SIGTERM during start-up must not kill the
    # process half-way (exit 143, no output); see interrupts.py.
    interrupts.install()
    from fakescope_cli.cli import main as cli_main

    try:
        cli_main()
    finally:
        # The command is done (its output written, files closed, workers joined). At exit Python's
        # last garbage collections would walk every object of every module loaded, ~15 ms of a
        # one-file scan, for memory the process gives back anyway: they are left alone.
        gc.freeze()


if __name__ == "__main__":
    main()
