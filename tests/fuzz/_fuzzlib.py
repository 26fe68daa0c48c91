"""Shared plumbing for the atheris harnesses in this folder.

Each harness module defines `TARGETS` (module prefixes to instrument), `MAX_LEN`, `load()` (imports
the code under test), `one_input(data)` (one fuzz iteration; raises on a finding) and `seeds()`
(name → bytes, built from the shared fixtures at run time, never stored in the repo). `main()` runs
a harness under atheris; the regression test and the smoke test reuse `one_input` without atheris.

What counts as a finding: any exception other than InputError escaping a reader (readers are
documented never to raise otherwise), an item that breaks the EvidenceItem contract (unknown
signal, details not JSON-serialisable, NaN, unbounded size), a hang (libFuzzer -timeout) or a
memory blow-up (-rss_limit_mb).
"""

from __future__ import annotations

import io
import json
import struct
import sys
import tempfile
import warnings
import zlib
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FIXTURES = REPO.parent / "shared" / "fixtures"

# Lower than the product's 150M default: a fuzzed header may claim any size, and decoding a
# near-limit image costs seconds and ~1 GB per iteration; the guard itself is exercised either way.
FUZZ_MAX_PIXELS = 4_000_000
MAX_ITEM_JSON = 256 * 1024  # "bounded in size": far above what any reader should emit

# libFuzzer options every run gets unless the caller sets them.
DEFAULT_FLAGS = ("-timeout=10", "-rss_limit_mb=2048")


class Finding(AssertionError):
    """A broken output contract (as opposed to an exception the reader let escape)."""


# ---------------------------------------------------------------- media and oracle


def media(data: bytes, *, allow_pixels: bool = True) -> Any:
    """A Media over in-memory bytes, exactly as Media.open would build it (no disk)."""
    from fakescope_cli.media import Media

    return Media(path="fuzz-input", data=bytes(data), size=len(data), mtime_ns=0,
                 max_pixels=FUZZ_MAX_PIXELS, allow_pixels=allow_pixels)


def check_items(items: Any, source: str) -> None:
    from fakescope_cli.evidence.base import SIGNALS, EvidenceItem

    if not isinstance(items, list):
        raise Finding(f"{source}: read() returned {type(items).__name__}, not a list")
    for item in items:
        if not isinstance(item, EvidenceItem):
            raise Finding(f"{source}: item of type {type(item).__name__}")
        if item.signal not in SIGNALS or not isinstance(item.strong, bool):
            raise Finding(f"{source}: bad signal/strong {item.signal!r}/{item.strong!r}")
        if not isinstance(item.summary, str) or not isinstance(item.details, dict):
            raise Finding(f"{source}: summary/details of the wrong type")
        try:
            text = json.dumps(item.to_dict(), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise Finding(f"{source}: details not JSON-serialisable: {exc}") from None
        if len(text) > MAX_ITEM_JSON:
            raise Finding(f"{source}: item is {len(text)} bytes of JSON")


def run_reader(read: Callable[[Any], Any], m: Any, source: str) -> list[Any]:
    """Call a reader; InputError is an accepted outcome, anything else propagates."""
    from fakescope_cli.errors import InputError

    try:
        items = read(m)
    except InputError:
        return []
    check_items(items, source)
    return items


# ---------------------------------------------------------------- container builders


class Cursor:
    """Reads fixed-width fields off fuzz input; past the end everything reads as zero/empty."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def u8(self) -> int:
        value = self.data[self.pos] if self.pos < len(self.data) else 0
        self.pos += 1
        return value

    def u16(self) -> int:
        return (self.u8() << 8) | self.u8()

    def take(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def rest(self) -> bytes:
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out

    @property
    def left(self) -> int:
        return max(0, len(self.data) - self.pos)


def png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


PNG_SIG = b"\x89PNG\r\n\x1a\n"
# PNG colour types by channel layout (PNG spec §11.2.2).
PNG_COLOR_TYPES = {"L": (0, 1), "RGB": (2, 3), "LA": (4, 2), "RGBA": (6, 4)}


def png_file(chunks_before: Iterable[bytes] = (), chunks_after: Iterable[bytes] = (), *,
             mode: str = "RGB", width: int = 1, height: int = 1, pixels: bytes = b"") -> bytes:
    """A valid 8-bit PNG; `pixels` is tiled or cut to the size (filter type 0 on every row)."""
    color_type, channels = PNG_COLOR_TYPES[mode]
    row = width * channels
    need = row * height
    raw = (pixels * (need // len(pixels) + 1))[:need] if pixels else bytes(need)
    scanlines = b"".join(b"\0" + raw[y * row : (y + 1) * row] for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (PNG_SIG + png_chunk(b"IHDR", ihdr) + b"".join(chunks_before)
            + png_chunk(b"IDAT", zlib.compress(scanlines, 1)) + b"".join(chunks_after)
            + png_chunk(b"IEND", b""))


@lru_cache(maxsize=1)
def _tiny_jpeg_tail() -> bytes:
    """An 8x8 baseline JPEG without its SOI and APP0: segments go in front of this."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (120, 60, 30)).save(buf, "JPEG", quality=80)
    data = buf.getvalue()
    pos = 2
    while data[pos + 1] in (0xE0, 0xE1):  # skip Pillow's own APP segments
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return data[pos:]


def jpeg_file(segments: Iterable[tuple[int, bytes]]) -> bytes:
    """A valid JPEG with the given (marker, payload) segments after SOI; payloads are capped."""
    out = [b"\xff\xd8"]
    for marker, payload in segments:
        payload = payload[:65533]
        out.append(bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload)
    out.append(_tiny_jpeg_tail())
    return b"".join(out)


XMP_APP1 = b"http://ns.adobe.com/xap/1.0/\0"


def jpeg_app11_jumbf(store: bytes) -> list[tuple[int, bytes]]:
    """APP11 segments carrying one JUMBF superbox (ISO/IEC 19566-5 / C2PA "Embedding in JPEG"):
    each starts "JP", a 2-byte box instance, a 4-byte sequence number from 1, then the box's
    LBox/TBox (repeated in every continuation segment) and the next slice of the box."""
    if len(store) < 8:
        return [(0xEB, b"JP\x02\x11\x00\x00\x00\x01" + store)]
    header, body = store[:8], store[8:]
    room = 65533 - 8 - 8
    parts = [body[i : i + room] for i in range(0, len(body), room)] or [b""]
    return [(0xEB, b"JP\x02\x11" + struct.pack(">I", n + 1) + header + part) for n, part in enumerate(parts)]


# ---------------------------------------------------------------- fixtures for seeds


def fixture_files(*patterns: str, max_size: int | None = None) -> list[Path]:
    found: list[Path] = []
    for pattern in patterns:
        for path in sorted(FIXTURES.glob(pattern)):
            if path.is_file() and (max_size is None or path.stat().st_size <= max_size):
                found.append(path)
    return found


def jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """(marker, payload) of a JPEG's header segments up to SOS."""
    out: list[tuple[int, bytes]] = []
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker in (0xDA, 0xD9):
            break
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        out.append((marker, data[pos + 4 : pos + 2 + length]))
        pos += 2 + length
    return out


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    pos = 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        out.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return out


# ---------------------------------------------------------------- running


def write_seeds(module: ModuleType, dest: Path) -> int:
    dest.mkdir(parents=True, exist_ok=True)
    count = 0
    seen: set[bytes] = set()
    for name, blob in module.seeds():
        if blob in seen or len(blob) > module.MAX_LEN:
            continue
        seen.add(blob)
        (dest / name).write_bytes(blob)
        count += 1
    return count


def main(module: ModuleType) -> None:
    """`python fuzz_x.py [libFuzzer args] [corpus dirs]`; when no corpus dir is given, or all are
    empty, the seeds are written to the first (a temporary one if none). `--write-seeds DIR` only
    writes the seeds."""
    argv = sys.argv[1:]
    if argv[:1] == ["--write-seeds"]:
        print(write_seeds(module, Path(argv[1])), "seeds written")
        return
    import atheris

    # str hooks feed startswith/endswith operands to the mutator; the RegEx hook is left off
    # (it logs a warning per unsupported pattern on every iteration).
    atheris.enabled_hooks.add("str")
    with atheris.instrument_imports(include=list(module.TARGETS)):
        module.load()
    flags = [a for a in argv if a.startswith("-")]
    dirs = [a for a in argv if not a.startswith("-")]
    if not dirs:
        dirs = [tempfile.mkdtemp(prefix=f"fuzz-{Path(sys.argv[0]).stem}-")]
    if all(Path(d).is_dir() and not any(Path(d).iterdir()) for d in dirs):
        write_seeds(module, Path(dirs[0]))  # nothing to start from: seed the first corpus dir
    for flag in (*DEFAULT_FLAGS, f"-max_len={module.MAX_LEN}"):
        if not any(f.startswith(flag.split("=")[0] + "=") for f in flags):
            flags.append(flag)
    warnings.simplefilter("ignore")  # Pillow warns on corrupt EXIF every iteration; noise only
    atheris.Setup([sys.argv[0], *flags, *dirs], module.one_input)
    atheris.Fuzz()
