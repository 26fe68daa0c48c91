"""`fakescope data`: training data (build, import).; registered by cli.py.

No `from __future__ import annotations` (cli.py says why).
"""

from typing import Annotated

import typer

from fakescope_cli.errors import DetectorUnavailable, UsageError

data_app = typer.Typer(help="Build training data from labelled images, or import a public dataset.", no_args_is_help=True)


@data_app.command("build")
def data_build_cmd(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(metavar="PATH", help="Labelled images: a folder with real/ and fake/, or a CSV (path,label[,generator][,notes]).")],
    output: Annotated[str, typer.Option("--output", "-o", metavar="FILE", help="The instruction JSONL to write.")],
    detect: Annotated[int, typer.Option("--detect", min=0, metavar="N", help="Detection records per image.")] = 1,
    attributes: Annotated[int, typer.Option("--attributes", min=0, metavar="N", help="Aspect probes per image (0-14).")] = 3,
    explain: Annotated[bool, typer.Option("--explain/--no-explain", help="One explanation record per image, built from known facts.")] = True,
    annotated_only: Annotated[bool, typer.Option("--annotated-only", help="Aspect probes only where the CSV annotates that aspect.")] = False,
    evidence: Annotated[bool, typer.Option("--evidence/--no-evidence", help="Read each file's provenance for the explanations.")] = True,
    notes: Annotated[bool, typer.Option("--notes/--no-notes", help="Quote the CSV's notes column in explanations.")] = True,
    manifest: Annotated[str | None, typer.Option("--manifest", metavar="DIR|FILE", help="Take the prompts from a checkpoint's fakescope.json.")] = None,
    absolute_paths: Annotated[bool, typer.Option("--absolute-paths", help="Write absolute image paths (default: relative to the output file).")] = False,
    shuffle: Annotated[bool, typer.Option("--shuffle/--no-shuffle", help="Shuffle the records.")] = True,
    seed: Annotated[int, typer.Option("--seed", metavar="N", help="Seed for aspect sampling and shuffling.")] = 0,
    recipe: Annotated[str | None, typer.Option("--recipe", metavar="FILE", help="TOML recipe; its [data] table sets --detect/--attributes/--explain.")] = None,
) -> None:
    """Turn labelled images into instruction records (JSONL) for `fakescope train lmm`."""
    import json


    try:
        from fakescope_train.instruct import TaskMix, build_instruct
    except ImportError as exc:
        raise UsageError(f"data build needs the train package: pip install 'fakescope[train]' ({exc})") from None
    mix = {"detect": detect, "attributes": attributes, "explain": int(explain)}
    if recipe:
        from fakescope_train.common import load_recipe

        table = load_recipe(recipe, "data")
        given = {k for k in mix if _option_given(ctx, k)}
        mix.update({k: _recipe_count(k, v) for k, v in table.items() if k in mix and k not in given})
    stats = build_instruct(
        path, output, seed=seed, absolute_paths=absolute_paths, manifest=manifest, shuffle=shuffle,
        mix=TaskMix(detect=mix["detect"], attributes=mix["attributes"], explain=mix["explain"],
                    annotated_only=annotated_only, evidence=evidence, notes=notes),
        log=lambda m: typer.echo(f"data build: {m}", err=True),
    )
    typer.echo(json.dumps(stats, ensure_ascii=False))


@data_app.command("import")
def data_import_cmd(
    source: Annotated[str, typer.Argument(metavar="FILE", help="The dataset's annotation file: JSON/JSONL (fakeclue, mmfr) or parquet (openfake, sid_set).")],
    layout: Annotated[str, typer.Option("--layout", metavar="NAME", help="fakeclue, mmfr, openfake or sid_set.")],
    output: Annotated[str, typer.Option("--output", "-o", metavar="FILE", help="The instruction JSONL to write.")],
    answer: Annotated[str, typer.Option("--answer", metavar="word|original", help="word: the detection prompt answered with the label word; original: the dataset's own prompt and answer (fakeclue, mmfr).")] = "word",
    image_root: Annotated[str | None, typer.Option("--image-root", metavar="DIR", help="Folder the JSON layouts' image paths are relative to (default: the file's folder).")] = None,
    manifest: Annotated[str | None, typer.Option("--manifest", metavar="DIR|FILE", help="Take the detection prompt from a checkpoint's fakescope.json.")] = None,
    absolute_paths: Annotated[bool, typer.Option("--absolute-paths", help="Write absolute image paths (default: relative to the output file).")] = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, metavar="N", help="Read at most N source records.")] = None,
) -> None:
    """Convert FakeClue, MMFR, OpenFake or SID_Set into instruction records (JSONL) for `fakescope train lmm`."""
    import json

    try:
        from fakescope_train.importers import import_dataset
    except ImportError as exc:
        raise UsageError(f"data import needs the train package: pip install 'fakescope[train]' ({exc})") from None
    try:
        stats = import_dataset(layout, source, output, answer=answer, image_root=image_root, manifest=manifest,
                               absolute_paths=absolute_paths, limit=limit,
                               log=lambda m: typer.echo(f"data import: {m}", err=True))
    except DetectorUnavailable as exc:  # a broken --manifest is the user's input here, not a detector
        raise UsageError(str(exc)) from None
    typer.echo(json.dumps(stats, ensure_ascii=False))


def _recipe_count(key: str, value: object) -> int:
    """A [data] recipe value as --detect/--attributes/--explain take it; a bad one is a usage error
    worded as `train lmm` words its recipe's (not a traceback from int())."""

    if key == "explain":  # a switch: true/false, or 0/1 written by hand
        if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
            return int(value)
        raise UsageError(f"explain: {value!r} is not a valid bool")
    try:
        if isinstance(value, bool) or not float(value).is_integer():  # type: ignore[arg-type]
            raise ValueError
        count = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        raise UsageError(f"{key}: {value!r} is not a valid int") from None
    if count < 0:
        raise UsageError(f"{key}: {value!r} must be 0 or more")
    return count


def _option_given(ctx: typer.Context, name: str) -> bool:
    """Whether --NAME was typed on this command line (a recipe must not override it)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"
