"""fakescope: tell whether an image was made by a generative model, how sure, and why."""

__version__ = "0.3.0"

from fakescope_cli.telemetry import quiet_libraries  # noqa: E402  (after the version: telemetry imports nothing of ours)

quiet_libraries()  # before any library that writes side files is imported (telemetry.py says why)
