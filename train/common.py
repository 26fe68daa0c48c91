"""What every trainer shares: seeds, logging, the labelled-data loader and recipe files.

`fakescope train builtin`, `fakescope train lmm` and `fakescope data build` read labelled images the
same way as `fakescope eval` (folders with real/ and fake/, or a CSV): through
`fakescope_cli.evaluate.load_labelled`, plus the optional CSV columns the trainers use (generator,
notes, per-aspect annotations). Nothing here imports torch at module level.
"""

from __future__ import annotations

import csv
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fakescope_cli.errors import UsageError
from fakescope_cli.evaluate import FAKE, load_labelled

LogFn = Callable[[str], None]
RECIPES_DIR = Path(__file__).resolve().parent / "recipes"


# ---------------------------------------------------------------- seeds


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and (when it is already imported) torch, on every device."""
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % (1 << 32))
    except ImportError:  # numpy is a core dependency; kept defensive for minimal installs
        pass
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)  # seeds CUDA too


# ---------------------------------------------------------------- logging


def distributed_rank() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from the variables torchrun / accelerate launch set."""
    def num(name: str, default: int) -> int:
        try:
            return int(os.environ.get(name, default))
        except ValueError:
            return default

    return num("RANK", 0), num("LOCAL_RANK", 0), num("WORLD_SIZE", 1)


def make_logger(prefix: str = "", *, all_ranks: bool = False, stream: Any = None) -> LogFn:
    """A line logger to stderr (machine output stays on stdout). Under a multi-process launch each
    line names its rank, and by default only rank 0 speaks."""
    rank, _, world = distributed_rank()
    tag = f"[rank {rank}/{world}] " if world > 1 else ""
    t0 = time.monotonic()

    def log(message: str) -> None:
        if world > 1 and rank != 0 and not all_ranks:
            return
        out = stream if stream is not None else sys.stderr
        print(f"{prefix}{tag}{time.monotonic() - t0:7.1f}s {message}", file=out, flush=True)

    return log


# ---------------------------------------------------------------- labelled data


@dataclass(frozen=True)
class LabelledRecord:
    """One labelled image with what the dataset says about it (nothing guessed)."""

    path: str
    label: int  # 0 real, 1 fake (fakescope_cli.evaluate.REAL / FAKE)
    group: str
    generator: str | None = None
    notes: str | None = None
    columns: dict[str, str] = field(default_factory=dict)  # every CSV column, lower-cased names

    @property
    def label_word(self) -> str:
        return "fake" if self.label == FAKE else "real"


def load_labelled_records(path: str | os.PathLike[str]) -> list[LabelledRecord]:
    """Labelled images from a folder (real/, fake/) or a CSV, as `fakescope eval` reads them.

    Paths, labels, validation and errors come from `fakescope_cli.evaluate.load_labelled`; for a
    CSV the other columns of each row are attached (`generator`, `notes`, anything else) so that
    trainers can use what the dataset states. A folder has no generator or notes.
    """
    items = load_labelled(path)
    p = os.fspath(path)
    extra: dict[str, dict[str, str]] = {}
    if os.path.isfile(p):
        extra = _csv_rows(p)
    out: list[LabelledRecord] = []
    for it in items:
        cols = extra.get(it.path, {})
        out.append(LabelledRecord(
            path=it.path, label=it.label, group=it.group,
            generator=(cols.get("generator") or "").strip() or None,
            notes=(cols.get("notes") or "").strip() or None,
            columns=cols,
        ))
    return out


def _csv_rows(csv_path: str) -> dict[str, dict[str, str]]:
    """path (resolved as load_labelled resolves it) -> {column: value}. The file was already
    validated by load_labelled, so this pass only collects cells."""
    base = os.path.dirname(csv_path)
    delimiter = "\t" if csv_path.lower().endswith(".tsv") else ","
    rows: dict[str, dict[str, str]] = {}
    with open(csv_path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        header = [h.strip().lower() for h in next(reader)]
        i_path = header.index("path")
        for row in reader:
            if len(row) <= i_path or not row[i_path].strip():
                continue
            raw = row[i_path].strip()
            key = raw if os.path.isabs(raw) else os.path.join(base, raw)
            rows.setdefault(key, {h: (row[i] if i < len(row) else "") for i, h in enumerate(header)})
    return rows


# ---------------------------------------------------------------- recipes


def resolve_recipe(name: str | os.PathLike[str]) -> Path:
    """A recipe file: a path, or the name of one shipped in train/recipes (with or without .toml)."""
    p = Path(name)
    if p.is_file():
        return p
    for candidate in (RECIPES_DIR / p.name, RECIPES_DIR / f"{p.name}.toml"):
        if candidate.is_file():
            return candidate
    shipped = ", ".join(sorted(q.stem for q in RECIPES_DIR.glob("*.toml"))) or "none"
    raise UsageError(f"{name}: no such recipe file (shipped recipes: {shipped})")


def load_recipe(name: str | os.PathLike[str], section: str) -> dict[str, Any]:
    """The `[section]` table of a TOML recipe (keys with '-' or '_' alike), or the top level when
    the file has no such table."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    path = resolve_recipe(name)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: not a readable TOML recipe: {exc}") from None
    table = data.get(section, data)
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [{section}] must be a table")
    return {str(k).replace("-", "_"): v for k, v in table.items() if not isinstance(v, dict)}
