#!/usr/bin/env python3
"""Fuzz the C2PA reader: the manifest pre-check, c2pa-python (c2pa-rs) on fuzzed manifest stores,
and the judgement over the store JSON.

Input: byte 0 picks the mode, the rest is
  0: a JUMBF manifest store, embedded in a JPEG as APP11 segments (so the pre-check passes and the
     library parses it)
  1: a JUMBF manifest store in a PNG caBX chunk
  2: a whole file (the pre-check's structure walkers, then the library when they let it through)
  3: manifest store JSON as Reader.json() returns it, handed to assess_store (what read() does
     with the library's output; the store's assertion data is whatever the signer wrote)
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _fuzzlib as fl  # noqa: E402

TARGETS = ("fakescope_cli",)
MAX_LEN = 131072
MODES = 4

c2pa_reader: Any = None


def load() -> None:
    global c2pa_reader
    import importlib

    from fakescope_cli.evidence import c2pa as reader_mod

    importlib.import_module("c2pa")  # the library: native code, not instrumented, loaded up front
    c2pa_reader = reader_mod


def build(data: bytes) -> bytes:
    mode, body = (data[0] % MODES, data[1:]) if data else (2, b"")
    if mode == 0:
        return fl.jpeg_file(fl.jpeg_app11_jumbf(body))
    if mode == 1:
        return fl.png_file([fl.png_chunk(b"caBX", body)])
    return body


def one_input(data: bytes) -> None:
    if c2pa_reader is None:
        load()
    if data[:1] and data[0] % MODES == 3:
        try:
            store = json.loads(data[1:].decode("utf-8", "replace"))
        except (ValueError, RecursionError):
            return
        if isinstance(store, dict):
            fl.check_items([c2pa_reader.assess_store(store)], "c2pa")
        return
    fl.run_reader(c2pa_reader.read, fl.media(build(data)), "c2pa")


def _stores(data: bytes) -> list[bytes]:
    """The JUMBF manifest store of a fixture: APP11 segments reassembled, or the caBX chunk."""
    if data.startswith(fl.PNG_SIG):
        return [body for ctype, body in fl.png_chunks(data) if ctype == b"caBX"]
    parts = [p for m, p in fl.jpeg_segments(data) if m == 0xEB and p.startswith(b"JP")]
    parts.sort(key=lambda p: int.from_bytes(p[4:8], "big"))
    if not parts:
        return []
    return [parts[0][8:] + b"".join(p[16:] for p in parts[1:])]


def seeds() -> Iterator[tuple[str, bytes]]:
    import io

    from fakescope_cli.evidence import c2pa as reader_mod

    lib = reader_mod._library()
    for path in fl.fixture_files("provenance/c2pa/*.jpg", "provenance/openai/*.png"):
        data = path.read_bytes()
        for store in _stores(data):
            if len(store) < MAX_LEN - 1:
                yield f"app11-{path.stem}", b"\0" + store
                yield f"cabx-{path.stem}", b"\1" + store
        if len(data) < MAX_LEN - 1:
            yield f"raw-{path.stem}", b"\2" + data
        mime = "image/png" if data.startswith(fl.PNG_SIG) else "image/jpeg"
        try:
            reader = lib.Reader.try_create(mime, io.BytesIO(data), None, reader_mod.offline_context(lib))
        except lib.C2paError:
            continue
        if reader is not None:
            with reader:
                text = reader.json().encode()
            if len(text) < MAX_LEN - 1:
                yield f"json-{path.stem}", b"\3" + text


if __name__ == "__main__":
    fl.main(sys.modules[__name__])
