"""`python -m fakescope_cli` and the `fakescope` command: signals first, then everything else."""

from fakescope_cli import interrupts


def main() -> None:
    # Before typer, rich or any detector is imported: a SIGTERM during start-up must not kill the
    # process half-way (exit 143, no output); see interrupts.py.
    interrupts.install()
    from fakescope_cli.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
