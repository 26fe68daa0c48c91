"""`fakescope --help` must stay light: no torch, transformers, llama_cpp (nor onnxruntime, c2pa)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "transformers", "llama_cpp", "onnxruntime", "c2pa", "cv2", "bitsandbytes", "fakescope_train")

# The `fakescope` command as its console script runs it (__main__.main: signal handling first, a
# plain scan without typer), with -S: no import hook of an editable install (it loads pathlib).
# Prints the command's output, then which of the watched modules it imported.
COMMAND_PROBE = """
import json, sys
sys.path[:0] = json.loads(sys.argv[3])
already = set(sys.modules)
watched = json.loads(sys.argv[2])
sys.argv = ["fakescope", *json.loads(sys.argv[1])]
from fakescope_cli.__main__ import main
try:
    main()
except SystemExit:
    pass
print("\\nLOADED=" + json.dumps(sorted(m for m in set(sys.modules) - already
                                        if m in watched or m.split('.')[0] in watched)))
"""


def _run_command(argv: list[str], watched) -> tuple[str, list[str]]:
    """(what the command printed, the watched modules it imported)."""
    import site

    paths = [str(Path(__file__).resolve().parent.parent), *site.getsitepackages()]
    proc = subprocess.run([sys.executable, "-S", "-c", COMMAND_PROBE, json.dumps(argv), json.dumps(watched),
                           json.dumps(paths)], capture_output=True, text=True, check=True)
    printed, loaded = proc.stdout.rsplit("\nLOADED=", 1)
    return printed, json.loads(loaded)


@pytest.mark.slow
@pytest.mark.parametrize("argv", [["--help"], ["scan", "--help"], ["--version"]])
def test_help_imports_nothing_heavy(argv):
    printed, loaded = _run_command(argv, HEAVY)
    assert "fakescope" in printed.lower()
    assert loaded == [], f"{argv} imported {loaded}"


def test_the_clis_copies_of_the_limits_are_medias():
    """cli.py repeats two defaults instead of importing media.py (6 ms more for every --help): the
    copies must not drift from the values the scan really applies."""
    from fakescope_cli import cli, media

    assert (cli.DEFAULT_MAX_PIXELS, cli.DEFAULT_MAX_BYTES) == (media.DEFAULT_MAX_PIXELS, media.DEFAULT_MAX_BYTES)


def _helps(group) -> dict[tuple[str, ...], str]:
    """Every command's help text, by command path, walking the group as click does."""
    import typer

    out: dict[tuple[str, ...], str] = {}

    def walk(command, ctx, path):
        out[path] = command.get_help(ctx)
        for name in getattr(command, "list_commands", lambda _ctx: [])(ctx):
            sub = command.get_command(ctx, name)
            walk(sub, typer.Context(sub, info_name=name, parent=ctx), (*path, name))

    walk(group, typer.Context(group, info_name="fakescope"), ())
    return out


def test_commands_built_on_demand_are_typers_own():
    """`fakescope` builds only the sub-command it runs (cli._command_group); what click shows of the
    others (their list, order, help texts, "did you mean") must be what typer's full build shows."""
    import typer
    from typer._click.exceptions import UsageError  # typer 0.28 vendors click

    from fakescope_cli import cli

    lazy = cli._command_group()
    assert lazy.get_command(typer.Context(lazy), "scan").name == "scan"
    assert list(lazy.commands._built) == ["scan"]  # the others are not built for a scan
    eager = typer.main.get_command(cli.app)
    assert list(lazy.commands) == list(eager.commands)
    assert _helps(lazy) == _helps(eager)
    with pytest.raises(UsageError, match="Did you mean 'scan'"):
        lazy.resolve_command(typer.Context(lazy), ["sacn"])


def _one_file_scan(path, watched) -> tuple[dict, list[str]]:
    printed, loaded = _run_command(["scan", "--no-pixels", "--no-cache", "-q", "-f", "jsonl", str(path)], watched)
    return json.loads(printed.splitlines()[0]), loaded


# Modules a one-file metadata scan of a plain JPEG has no use for (bench/bench_metadata.py measures it
# against exiftool): typer (scan_argv parses a plain command line), workers, the cache, the HEIF
# opener, the shard merger, C2PA (no manifest here), exifread (tiff_ifd.py reads EXIF); the standard
# library's pathlib, datetime and platform (~5 ms together); Pillow (jpeg_header.py reads a plain
# JPEG) and the logging it imports.
NOT_FOR_ANY_ONE_FILE = ("typer", "multiprocessing", "sqlite3", "pillow_heif", "fakescope_cli.merge",
                        "fakescope_cli.workers", "c2pa", "numpy", "onnxruntime", "exifread", "pathlib", "datetime",
                        "platform")
NOT_FOR_ONE_JPEG = (*NOT_FOR_ANY_ONE_FILE, "PIL", "logging")


# A PNG needs Pillow, but only its PNG plugin (media._open_as_sniffed), not the four Image.open loads first.
NOT_FOR_ONE_PNG = (*NOT_FOR_ANY_ONE_FILE, "PIL.JpegImagePlugin", "PIL.GifImagePlugin", "PIL.BmpImagePlugin",
                   "PIL.PpmImagePlugin")


@pytest.mark.slow
@pytest.mark.parametrize("name, unused", [
    ("exif-samples/jpg/Canon_40D.jpg", NOT_FOR_ONE_JPEG),
    ("peers/sd-parsers/tests/resources/parsers/InvokeAI/invokeai_dream1.png", NOT_FOR_ONE_PNG),
], ids=["jpeg", "png"])
def test_one_file_metadata_scan_loads_only_what_it_uses(fixtures_dir, name, unused):
    record, loaded = _one_file_scan(fixtures_dir / name, unused)
    assert record["path"].endswith(name.rsplit("/", 1)[1]) and record["errors"] == []  # it did scan the file
    assert record["width"] and record["height"]
    assert loaded == [], f"a one-file --no-pixels scan imported {loaded}"


def test_run_header_platform_is_the_stdlibs():
    """The run header names the platform as platform.platform(terse=True) does, without the child
    process that asks `uname -p` for a processor name (record.platform_name)."""
    import platform

    from fakescope_cli.record import platform_name

    assert platform_name() == platform.platform(terse=True)


@pytest.mark.slow
def test_one_file_scan_reads_c2pa_without_importing_importlib_metadata(fixtures_dir):
    """c2pa-python's package looks its version up through importlib.metadata (~20 ms of a one-file
    scan); the command imports it without that lookup (evidence/c2pa._library) and still reads the
    manifest and its validation."""
    signed = fixtures_dir / "provenance/c2pa/ocsp.jpg"
    record, loaded = _one_file_scan(signed, ["importlib.metadata", "c2pa"])
    c2pa_items = [e for e in record["evidence"] if e["source"] == "c2pa"]
    assert c2pa_items and not any(e["details"].get("unreadable") for e in c2pa_items), c2pa_items
    assert record["verdict"] == "ai-generated"
    assert "importlib.metadata" not in loaded and "c2pa" in loaded
