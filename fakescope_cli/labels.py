"""Labelled input for `fakescope eval` and the trainers: a folder with `real/` and `fake/`
subfolders, or a CSV (path,label[,group]), read into `LabelledItem`s."""

from __future__ import annotations

import csv
import os
import stat
from dataclasses import dataclass

from fakescope_cli.errors import UsageError
from fakescope_cli.media import has_image_extension, sniff_format

REAL, FAKE = 0, 1
_LABEL_WORDS = {"real": REAL, "0": REAL, "human": REAL, "fake": FAKE, "1": FAKE, "ai": FAKE}
_CLASS_DIRS = {"real": REAL, "fake": FAKE}
_GROUP_COLUMNS = ("generator", "group", "source")  # first one present names the group


@dataclass(frozen=True)
class LabelledItem:
    path: str
    label: int  # 0 real, 1 fake
    group: str


def class_name(label: int) -> str:
    return "fake" if label == FAKE else "real"


def _is_image_file(path: str) -> bool:
    """An image by extension, or by its leading bytes when the extension says nothing."""
    if has_image_extension(path):
        return True  # a broken .jpg must reach the scan and show up as unscored, not vanish
    # O_NONBLOCK and the fstat check: a FIFO or device in the tree must never hang the walk
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        head = os.read(fd, 64)
    except OSError:
        return False
    finally:
        os.close(fd)
    return sniff_format(head) is not None


def _walk_error(exc: OSError) -> None:
    # An unreadable subfolder would silently drop labelled images and bias every number.
    raise UsageError(f"{exc.filename}: cannot list folder: {exc.strerror or exc}")


def _load_folder(root: str, skipped: list[str] | None) -> list[LabelledItem]:
    class_dirs: list[tuple[str, int]] = []
    for entry in sorted(os.listdir(root)):
        label = _CLASS_DIRS.get(entry.lower())
        if label is not None and os.path.isdir(os.path.join(root, entry)):
            class_dirs.append((entry, label))
    if not class_dirs:
        raise UsageError(f"{root}: expected a 'real/' and/or 'fake/' subfolder (or pass a CSV)")
    items: list[LabelledItem] = []
    for entry, label in class_dirs:
        class_root = os.path.join(root, entry)
        for dirpath, dirnames, filenames in os.walk(class_root, onerror=_walk_error):
            dirnames.sort()
            rel = os.path.relpath(dirpath, class_root)
            group = class_name(label) if rel == os.curdir else rel.split(os.sep)[0]
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                if _is_image_file(path):
                    items.append(LabelledItem(path, label, group))
                elif skipped is not None:
                    skipped.append(path)
    return items


def parse_label(text: str) -> int:
    """real/human/0 -> 0 and fake/ai/1 -> 1, case-insensitive; UsageError otherwise."""
    label = _LABEL_WORDS.get(text.strip().lower())
    if label is None:
        raise UsageError(f"label {text!r} is not one of real, fake, 0, 1, human, ai")
    return label


def _load_csv(csv_path: str) -> list[LabelledItem]:
    base = os.path.dirname(csv_path)
    delimiter = "\t" if csv_path.lower().endswith(".tsv") else ","
    try:
        fh = open(csv_path, encoding="utf-8-sig", newline="")  # utf-8-sig: spreadsheets add a BOM
    except OSError as exc:
        raise UsageError(f"{csv_path}: cannot read: {exc.strerror or exc}") from None
    with fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise UsageError(f"{csv_path}: not a readable UTF-8 CSV: {exc}") from None
        if header is None:
            raise UsageError(f"{csv_path}: empty file; expected a header 'path,label[,generator]'")
        columns = [h.strip().lower() for h in header]
        if "path" not in columns or "label" not in columns:
            raise UsageError(f"{csv_path}: the header must name 'path' and 'label' columns")
        i_path, i_label = columns.index("path"), columns.index("label")
        i_group = next((columns.index(c) for c in _GROUP_COLUMNS if c in columns), None)
        items: list[LabelledItem] = []
        seen: dict[str, tuple[int, int]] = {}
        try:
            for row in reader:
                line = reader.line_num
                if not row or all(not cell.strip() for cell in row):
                    continue
                if len(row) <= max(i_path, i_label):
                    raise UsageError(f"{csv_path}:{line}: missing path or label")
                raw_path = row[i_path].strip()
                if not raw_path:
                    raise UsageError(f"{csv_path}:{line}: empty path")
                try:
                    label = parse_label(row[i_label])
                except UsageError as exc:
                    raise UsageError(f"{csv_path}:{line}: {exc}") from None
                path = raw_path if os.path.isabs(raw_path) else os.path.join(base, raw_path)
                if path in seen:
                    first_line, first_label = seen[path]
                    if first_label != label:
                        raise UsageError(
                            f"{csv_path}:{line}: {raw_path!r} is labelled differently on line {first_line}"
                        )
                    continue  # an exact repeat would count the image twice
                seen[path] = (line, label)
                group = row[i_group].strip() if i_group is not None and i_group < len(row) else ""
                items.append(LabelledItem(path, label, group or class_name(label)))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise UsageError(f"{csv_path}: not a readable UTF-8 CSV: {exc}") from None
    return items


def load_labelled(path: str | os.PathLike[str], *, skipped: list[str] | None = None) -> list[LabelledItem]:
    """Labelled items from a folder with real/ and fake/ subfolders, or from a CSV file.

    Folder: both subfolders are walked recursively (names matched case-insensitively); the group
    is the first folder below real/ or fake/ (fake/midjourney/a/x.png -> 'midjourney'), else
    'real' or 'fake'. Non-image files are left out and, when `skipped` is given, appended to it.
    CSV: header with `path` and `label` and optionally `generator`, `group` or `source` (the first
    present names the group); relative paths are resolved against the CSV's folder; files are
    listed as given, so a missing one becomes an unscored error record rather than vanishing.
    Raises UsageError for anything that cannot be read as labelled input.
    """
    p = os.fspath(path)
    if os.path.isdir(p):
        return _load_folder(p, skipped)
    if os.path.isfile(p):
        return _load_csv(p)
    raise UsageError(f"{p}: no such folder or CSV file")
