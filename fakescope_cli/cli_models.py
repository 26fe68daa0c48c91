"""`fakescope models`: detector backends, presets, checkpoints (list, inspect, pull).; registered by cli.py.

No `from __future__ import annotations` (cli.py says why).
"""

import os
from pathlib import Path
from typing import Annotated

import typer

from fakescope_cli.errors import UsageError

models_app = typer.Typer(help="Inspect detector backends and model checkpoints.", no_args_is_help=True)


@models_app.command("list")
def models_list() -> None:
    """The detector backends and whether each can be loaded here."""
    from fakescope_cli.detectors import backend_availability

    for name, status in backend_availability().items():
        typer.echo(f"{name:10s} {status}")
    from fakescope_cli.presets import catalogue

    typer.echo("\npresets (fakescope models pull NAME; weights: public, or not released):")
    for preset in catalogue():
        d = preset.data
        weights = "public" if d.get("weights_public") else "not released"
        typer.echo(f"  {preset.name:26s} {d.get('backend') or 'plugin':10s} {preset.repo_id or '-':45s} "
                   f"{weights:12s} {d.get('licence')}")


@models_app.command("inspect")
def models_inspect(
    path: Annotated[str, typer.Argument(metavar="PATH", help="A transformers checkpoint folder or a GGUF file.")],
    mmproj: Annotated[str | None, typer.Option("--mmproj", metavar="FILE", help="Multimodal projector GGUF.")] = None,
    trust_pickle: Annotated[bool, typer.Option("--trust-pickle", help="Allow pickle-based weights (.bin/.pt).")] = False,
    no_hash: Annotated[bool, typer.Option("--no-hash", help="Skip hashing the weights (fast for large files).")] = False,
) -> None:
    """What `scan` will use for a checkpoint: architecture, quantisation, manifest, weights sha256."""
    import json

    from fakescope_cli.models_inspect import inspect_model

    if not os.path.exists(path):  # a typo, not a broken checkpoint (which is exit 4)
        raise UsageError(f"{path}: no such folder or file")
    info = inspect_model(path, mmproj=mmproj, trust_pickle=trust_pickle, hash_weights=not no_hash)
    from fakescope_cli.detectors.classifier import inspect_labels
    from fakescope_cli.presets import match, reading_warnings

    labels = inspect_labels(path) if Path(path).is_dir() else None
    if labels is not None:  # an image classifier: scanned with --backend classifier
        info["backend"] = "classifier"
        info["classifier_labels"] = labels
    preset, why = match(path)
    info["preset"] = {"name": preset.name, "matched_by": why} if preset else {"name": None, "matched_by": why}
    info["preset_warnings"] = reading_warnings(preset, path)
    for warning in info["preset_warnings"]:
        typer.echo(f"fakescope: warning: {warning}", err=True)
    typer.echo(json.dumps(info, indent=2, ensure_ascii=False))


@models_app.command("pull")
def models_pull(
    name: Annotated[str, typer.Argument(metavar="NAME|REPO_ID", help="A preset name (see `models list`) or a hub repo id owner/name.")],
    revision: Annotated[str | None, typer.Option("--revision", metavar="REV", help="Branch, tag or commit to pull (default main); the resolved commit is pinned.")] = None,
    dest: Annotated[Path | None, typer.Option("--dir", metavar="DIR", help="Where the checkpoint goes (default: the user model folder, or $FAKESCOPE_MODELS_DIR).")] = None,
    trust_pickle: Annotated[bool, typer.Option("--trust-pickle", help="Allow pickle-based weights (.bin/.pt) when a repo has no safetensors. Unsafe with untrusted files.")] = False,
    refresh: Annotated[bool, typer.Option("--refresh", help="Ask the hub even when the checkpoint is present (a branch may have moved); unchanged files are not fetched again.")] = False,
) -> None:
    """Download a checkpoint from a Hugging Face-compatible hub ($HF_ENDPOINT; token from $HF_TOKEN) and
    write its fakescope.json with the preset, the revision and every weight file's sha256 pinned."""
    import json

    from fakescope_cli.pull import pull

    result = pull(name, revision=revision, dest=dest, trust_pickle=trust_pickle, refresh=refresh,
                  log=lambda m: typer.echo(f"fakescope: {m}", err=True))
    for note in result.notes:
        typer.echo(f"fakescope: note: {note}", err=True)
    typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
