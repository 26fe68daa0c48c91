"""One evidence file: its bytes, identity and format, and its pixels on demand, behind guards.

The file is opened read-only, once, and never written. Pixels are decoded only when a reader or
detector asks for them, so a metadata-only scan (`--no-pixels`) never pays for decoding.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import sys
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from fakescope_cli.errors import InputError
from fakescope_cli.png_chunks import (  # noqa: F401  (re-exported: media's public names)
    MAX_TEXT_CHUNK,
    MAX_TEXT_MEMORY,
    SkippedTextChunk,
    is_text_limit_error,
    png_chunks,
    png_crc_mismatches,
    png_with_ancillary_crcs_fixed,
    png_without_big_text,
    text_limit_message,
)

DEFAULT_MAX_PIXELS = 150_000_000  # ~12k x 12k; a decompression bomb is far above this
DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB

# Extensions that claim "image": a file with one of these is never silently skipped.
IMAGE_EXTENSIONS = frozenset(
    "jpg jpeg jpe jfif png apng webp tif tiff gif bmp dib heic heif hif avif".split()
)

# The formats each extension promises (none, for a known non-image one), for the extension-mismatch
# warning.
EXTENSION_FORMATS: dict[str, frozenset[str]] = {
    **dict.fromkeys(("jpg", "jpeg", "jpe", "jfif"), frozenset({"JPEG"})),
    **dict.fromkeys(("png", "apng"), frozenset({"PNG"})),
    "webp": frozenset({"WEBP"}),
    **dict.fromkeys(("tif", "tiff"), frozenset({"TIFF"})),
    "gif": frozenset({"GIF"}),
    **dict.fromkeys(("bmp", "dib"), frozenset({"BMP"})),
    # Phones and converters use .heic/.heif for AVIF-coded HEIF too: both are one container.
    **dict.fromkeys(("heic", "heif", "hif"), frozenset({"HEIF", "AVIF"})),
    "avif": frozenset({"AVIF"}),
    # Non-image extensions promise no image format at all: a picture named like a document or a
    # data blob is what an investigator wants pointed out.
    **dict.fromkeys(
        ("txt", "text", "log", "csv", "json", "xml", "html", "htm", "rtf", "pdf", "doc", "docx", "odt",
         "xls", "xlsx", "ppt", "pptx", "dat", "bin", "tmp", "db", "zip", "rar", "7z", "exe", "dll",
         "mp3", "wav"),
        frozenset()),
    # Video containers (fakescope_cli.video): MP4 and QuickTime are one family, as are WebM and Matroska.
    **dict.fromkeys(("mp4", "m4v", "mov", "qt", "3gp", "3g2"), frozenset({"MP4", "MOV"})),
    **dict.fromkeys(("webm", "mkv"), frozenset({"WEBM", "MKV"})),
    "avi": frozenset({"AVI"}),
}
# Formats whose files may hold several frames or pages, of which only the first is analysed.
# (JPEG/MPO previews and HEIF bursts are left out: their first image is the picture itself.)
MULTI_FRAME_FORMATS = frozenset({"GIF", "PNG", "WEBP", "TIFF"})

_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"}
_AVIF_BRANDS = {b"avif", b"avis"}
_GENERIC_HEIF_BRANDS = {b"mif1", b"msf1", b"mif2"}


def sniff_format(head: bytes) -> str | None:
    """Name the image format from its leading bytes (at least 32), or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[:2] == b"BM" and len(head) >= 14:
        return "BMP"
    if head[4:8] == b"ftyp":
        box_len = int.from_bytes(head[0:4], "big")
        brands = {head[8:12]}
        end = min(len(head), max(box_len, 16))
        brands.update(head[i : i + 4] for i in range(16, end - 3, 4))
        if brands & _AVIF_BRANDS:
            return "AVIF"
        if brands & (_HEIF_BRANDS | _GENERIC_HEIF_BRANDS):
            return "HEIF"
    return None


def has_image_extension(path: str | os.PathLike[str]) -> bool:
    suffix = os.path.splitext(os.fsdecode(path))[1].lower().lstrip(".")
    return suffix in IMAGE_EXTENSIONS


def display_path(path: str | os.PathLike[str]) -> str:
    """The path as printable text; undecodable bytes become backslash escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


_pillow_ready = False
_png_ready = False
_heif_ready = False
HEIF_FORMATS = frozenset({"HEIF", "AVIF"})  # opened through pillow-heif


def _prepare_pillow(fmt: str | None) -> None:
    """Pillow's limits, set once, for the format about to be opened: the PNG text limits once a PNG
    comes (or anything has loaded Pillow's PNG plugin), the HEIF/AVIF openers once such a file does:
    importing pillow-heif is ~6 ms, and the PNG plugin ~3 ms, of a one-file scan that has no such file."""
    global _pillow_ready, _png_ready, _heif_ready
    if not _pillow_ready:
        from PIL import Image, ImageFile

        ImageFile.LOAD_TRUNCATED_IMAGES = False
        Image.MAX_IMAGE_PIXELS = None  # we enforce our own limit before decoding
        _pillow_ready = True
    if not _png_ready and (fmt == "PNG" or "PIL.PngImagePlugin" in sys.modules):
        from PIL import PngImagePlugin

        PngImagePlugin.MAX_TEXT_CHUNK = MAX_TEXT_CHUNK
        PngImagePlugin.MAX_TEXT_MEMORY = MAX_TEXT_MEMORY
        _png_ready = True
    if fmt in HEIF_FORMATS and not _heif_ready:
        try:
            import pillow_heif

            pillow_heif.register_heif_opener()
            if hasattr(pillow_heif, "register_avif_opener"):
                pillow_heif.register_avif_opener()
        except ImportError:  # HEIC support is optional at run time
            pass
        _heif_ready = True


# Pillow's plugin for each format sniff_format names (the same names as Pillow's format ids).
_PILLOW_PLUGINS = {"JPEG": "JpegImagePlugin", "PNG": "PngImagePlugin", "GIF": "GifImagePlugin",
                   "WEBP": "WebPImagePlugin", "TIFF": "TiffImagePlugin", "BMP": "BmpImagePlugin"}


def _open_as_sniffed(data: bytes, fmt: str | None) -> Any:
    """Image.open tried with the plugin of the sniffed format only; None when that plugin does not
    take the bytes, and Image.open then tries every format as usual (the same outcome, later).

    Why: on a file object Image.open imports five plugins (BMP, GIF, JPEG, PPM, PNG; ~7 ms of a
    one-file scan) before it looks at the bytes, whose format is known here already."""
    import importlib
    import struct

    from PIL import Image

    plugin = _PILLOW_PLUGINS.get(fmt or "")
    if plugin is None:
        return None
    importlib.import_module(f"PIL.{plugin}")
    opener = Image.OPEN.get(fmt or "")
    if opener is None:
        return None
    factory, accept = opener
    taken = accept(data[:16]) if accept else True
    if isinstance(taken, str) or not taken:  # a str: Pillow's reason to refuse, which Image.open warns
        return None
    try:
        return factory(io.BytesIO(data), "")
    except (SyntaxError, IndexError, TypeError, struct.error):  # Image.open's "not this format" errors
        return None


def _stat_error(path: str | os.PathLike[str], exc: OSError) -> InputError:
    if exc.errno == errno.ELOOP:
        return InputError("symbolic link loop", "symlink-loop")
    if exc.errno == errno.ENOENT:
        if os.path.islink(path):
            return InputError("symbolic link target does not exist", "dangling-symlink")
        return InputError("no such file", "not-found")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return InputError("permission denied", "permission-denied")
    return InputError(f"cannot read: {exc.strerror or exc}", "read-error")


def read_file_readonly(path: str | os.PathLike[str], max_bytes: int) -> tuple[bytes, os.stat_result]:
    """Read a regular file without ever opening a FIFO, socket or device.

    O_NONBLOCK makes even a racing FIFO swap return at once; O_NOATIME keeps the access time
    where the owner allows it. The file is never opened for writing.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        raise _stat_error(path, exc) from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError("not a regular file (FIFO, socket, device or folder)", "not-a-regular-file")
    # What is known of a refused file still goes into its record's chain of custody.
    if st.st_size == 0:
        raise InputError("empty file (0 bytes)", "empty-file", _EMPTY_FACTS | {"mtime_ns": st.st_mtime_ns})
    if st.st_size > max_bytes:
        raise InputError(f"file is {st.st_size} bytes, over the {max_bytes}-byte limit", "file-too-large",
                         {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns})
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        try:
            fd = os.open(path, flags | getattr(os, "O_NOATIME", 0))
        except PermissionError:
            fd = os.open(path, flags)  # O_NOATIME needs ownership
    except OSError as exc:
        raise _stat_error(path, exc) from None
    try:
        fst = os.fstat(fd)
        if not stat.S_ISREG(fst.st_mode):
            raise InputError("not a regular file", "not-a-regular-file")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", "read-error") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise InputError(f"file grew past the {max_bytes}-byte limit while reading", "file-too-large",
                         {"mtime_ns": fst.st_mtime_ns})
    if not data:
        raise InputError("empty file (0 bytes)", "empty-file", _EMPTY_FACTS | {"mtime_ns": fst.st_mtime_ns})
    return data, fst


_EMPTY_FACTS = {"bytes": 0, "sha256": hashlib.sha256(b"").hexdigest()}


def extension_mismatch(name: str, fmt: str | None) -> str | None:
    """The suffix of `name`, as written, when it promises another format than `fmt` (see
    Media.extension_mismatch); a function too, for a cached record scanned under another name."""
    suffix = os.path.splitext(name)[1]
    expected = EXTENSION_FORMATS.get(suffix.lstrip(".").lower())
    if expected is None or fmt is None or fmt in expected:
        return None
    return suffix


@dataclass
class Media:
    """One file under analysis. Readers use `data`, `format`, `info` and `pixels()`."""

    path: str  # as given or found; may hold surrogate escapes for non-UTF-8 names
    data: bytes
    size: int
    mtime_ns: int
    max_pixels: int = DEFAULT_MAX_PIXELS
    allow_pixels: bool = True
    _header_error: InputError | None = field(default=None, repr=False)
    _skipped_text: list[SkippedTextChunk] = field(default_factory=list, repr=False)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        allow_pixels: bool = True,
    ) -> Media:
        data, st = read_file_readonly(path, max_bytes)
        return cls(
            path=os.fspath(path),
            data=data,
            size=len(data),
            mtime_ns=st.st_mtime_ns,
            max_pixels=max_pixels,
            allow_pixels=allow_pixels,
        )

    @property
    def display_path(self) -> str:
        return display_path(self.path)

    @property
    def name(self) -> str:
        return os.path.basename(self.path)  # a file's path: no trailing separator to strip

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @cached_property
    def format(self) -> str | None:
        return sniff_format(self.data[:64])

    @cached_property
    def header(self) -> Any:
        """The Pillow image opened lazily (header parsed, pixels not decoded); for a plain JPEG in a
        metadata-only scan, a jpeg_header.JpegHeader with the same size and metadata segments.

        Raises InputError for unsupported or unparseable data.
        """
        if self._header_error is not None:
            # Not cached by cached_property (it raised): remember it, so that every reader asking
            # for `info` does not parse (and maybe inflate) the same bad header again.
            raise self._header_error
        try:
            return self._open_header()
        except InputError as exc:
            self._header_error = exc
            raise

    @property
    def header_error(self) -> InputError | None:
        """Why the header cannot be parsed, or None when it can (readers then see `info`)."""
        try:
            _ = self.header
        except InputError as exc:
            return exc
        return None

    def _open_header(self) -> Any:
        if self.format == "JPEG" and not self.allow_pixels:
            # Metadata only: a plain JPEG's size and segments are read without Pillow (jpeg_header.py).
            from fakescope_cli.jpeg_header import read_jpeg_header

            header = read_jpeg_header(self.data, self._open_with_pillow)
            if header is not None:
                return header
        return self._open_with_pillow()

    def _open_with_pillow(self) -> Any:
        _prepare_pillow(self.format)
        if self.format is None:
            raise InputError("not a recognised image format", "unsupported-format")
        try:
            return self._pillow_open(self.data)
        except InputError as exc:  # Pillow could not identify it (a bad checksum ends up here too)
            failure = exc
        except _OPEN_ERRORS as exc:
            if self._text_limit_hit(exc):
                # One text chunk too big to inflate must not cost the pixels, EXIF and the rest.
                return self._open_without_big_text()
            failure = _decode_error(exc)
        repaired = png_with_ancillary_crcs_fixed(self.data) if self.format == "PNG" else None
        if repaired is None:
            raise failure
        # A damaged ancillary chunk (text, time, colour hints) leaves the image itself sound: it is
        # read as it is, and the png-crc warning names it. A damaged critical chunk (IHDR…) stays an error.
        try:
            return self._pillow_open(repaired)
        except (InputError, *_OPEN_ERRORS):
            raise failure from None

    def _pillow_open(self, data: bytes) -> Any:
        """Image.open on `data`; Pillow's own exceptions pass through, UnidentifiedImageError
        becomes InputError."""
        from PIL import Image, UnidentifiedImageError

        try:
            with warnings.catch_warnings():
                # Broken EXIF makes Pillow warn on stderr; the EXIF reader reports it instead.
                warnings.simplefilter("ignore")
                return _open_as_sniffed(data, self.format) or Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise InputError(
                f"{self.format} signature found but the data cannot be parsed", "corrupt-image"
            ) from None

    def _text_limit_hit(self, exc: BaseException) -> bool:
        """Worth retrying without big text: a PNG, refused for its text, not retried already."""
        return self.format == "PNG" and not self._skipped_text and is_text_limit_error(exc)

    def _open_without_big_text(self) -> Any:
        """Open a copy of the PNG without the text chunks over our limits, remembering which.

        Only the over-limit chunks go first, so the other text stays in `info`; should Pillow still
        refuse (its count and ours disagree), every text chunk goes. The raw bytes in `data` are
        untouched: the evidence readers read text chunks from them (bounded) themselves."""
        for drop_all in (False, True):
            stripped, skipped = png_without_big_text(self.data, drop_all=drop_all)
            if not skipped:
                continue  # nothing found to leave out (our count and Pillow's differ): try all
            try:
                img = self._pillow_open(stripped)
            except _OPEN_ERRORS as exc:
                if is_text_limit_error(exc):
                    continue
                raise _decode_error(exc) from None  # damaged besides the text: the real reason
            self._skipped_text = skipped
            return img
        raise InputError(text_limit_message("leaving text chunks out did not help"), "corrupt-image")

    @property
    def skipped_text_chunks(self) -> list[SkippedTextChunk]:
        """PNG text chunks left out of `info` because they inflate past our limits ([] if none).

        Those before the image data are known once the header is parsed, those after it once the
        pixels are decoded (Pillow reads them then)."""
        try:
            _ = self.header
        except InputError:
            pass
        return list(self._skipped_text)

    @property
    def skipped_text_warnings(self) -> list[dict[str, str]]:
        """The record warning for `skipped_text_chunks`: [] or one `text-chunk-skipped`."""
        skipped = self.skipped_text_chunks
        if not skipped:
            return []
        # The image was read as usual; only these chunks' text is missing from the metadata.
        return [{"code": "text-chunk-skipped", "message": (
            f"PNG text chunk{'s' if len(skipped) > 1 else ''} over fakescope's limit "
            f"({MAX_TEXT_CHUNK >> 20} MiB per chunk, {MAX_TEXT_MEMORY >> 20} MiB in all; a zip-bomb "
            f"guard) not inflated and left out of the metadata: "
            f"{'; '.join(chunk.describe() for chunk in skipped)}; the rest of the file was read as usual")}]

    @property
    def width(self) -> int | None:
        try:
            return int(self.header.size[0])
        except InputError:
            return None

    @property
    def height(self) -> int | None:
        try:
            return int(self.header.size[1])
        except InputError:
            return None

    @property
    def info(self) -> dict[str, Any]:
        """Pillow's metadata dict (PNG text chunks, 'exif', 'xmp', 'icc_profile' …); {} if unparseable.
        A plain JPEG in a metadata-only scan has only the keys fakescope reads (jpeg_header.py)."""
        try:
            return dict(self.header.info)
        except InputError:
            return {}

    @cached_property
    def frame_count(self) -> int | None:
        """Frames of an animated GIF/WebP/APNG or pages of a TIFF; 1 for a still image; None when
        the header cannot be parsed or the frames cannot be counted."""
        if self.format not in MULTI_FRAME_FORMATS:
            return 1
        try:
            header = self.header
        except InputError:
            return None
        if self.format in ("PNG", "WEBP"):
            return int(getattr(header, "n_frames", 1))  # read from acTL / ANIM when opened: no seeking
        # GIF and TIFF count by seeking through the file, which would move the shared header image
        # (and its decoded first frame) along: count on a second, private parse instead.
        from PIL import Image

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(io.BytesIO(self.data)) as img:
                    return int(getattr(img, "n_frames", 1))
        except Exception:  # a damaged later frame: the first one was still analysed
            return None

    @property
    def extension_mismatch(self) -> str | None:
        """'.jpg' (as written: '.JPG' stays '.JPG') when the name promises a format the bytes are
        not, or names a known non-image type ('.txt', '.pdf' …) while the bytes are an image; None
        when they agree, the extension is unknown or absent, or the format is unknown."""
        return extension_mismatch(self.name, self.format)

    def check_pixel_limit(self) -> None:
        w, h = self.header.size
        if w * h > self.max_pixels:
            raise InputError(
                f"{w}x{h} = {w * h} pixels exceeds the limit of {self.max_pixels} "
                "(decompression-bomb guard; raise with --max-pixels)",
                "pixel-limit",
            )

    @cached_property
    def _decoded(self) -> Any:
        self.check_pixel_limit()
        img = self.header
        try:
            return _load(img)
        except _DECODE_ERRORS as exc:
            if not self._text_limit_hit(exc):
                raise _decode_error(exc) from None
        # Pillow reads the text chunks after the image data only now: same remedy as for the header.
        img = self._open_without_big_text()
        self.__dict__["header"] = img  # the cached header is the image readers and `info` use
        try:
            return _load(img)
        except _DECODE_ERRORS as exc:
            raise _decode_error(exc) from None

    def pixels(self) -> Any:
        """The decoded Pillow image (first frame), mode as stored. Raises InputError."""
        if not self.allow_pixels:
            raise InputError("pixel decoding is disabled (--no-pixels)", "unsupported-format")
        return self._decoded

    def rgb(self) -> Any:
        """The decoded image converted to 8-bit RGB (16-bit, CMYK, palette handled).

        Converted once: the watermark reader and the detector both ask for it."""
        return self._rgb

    @cached_property
    def _rgb(self) -> Any:
        from fakescope_cli.imageops import to_rgb8

        return to_rgb8(self.pixels())


# Found by fuzzing: RuntimeError from Pillow's AVIF plugin and pillow-heif on corrupt containers;
# OverflowError from out-of-range palette or tag values.
_OPEN_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError,
                RuntimeError, OverflowError)
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError,
                  MemoryError, ZeroDivisionError, RuntimeError, OverflowError)


def _load(img: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        img.load()
    return img


def _decode_error(exc: BaseException) -> InputError:
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if "truncated" in lowered or isinstance(exc, EOFError) or "premature end" in lowered:
        return InputError(f"truncated image data: {text}", "truncated")
    if isinstance(exc, MemoryError):
        return InputError("not enough memory to decode the image", "pixel-limit")
    if "MAX_TEXT_CHUNK" in text or "MAX_TEXT_MEMORY" in text:
        # Pillow names its own variables; say which of our bounds the file crossed, and why it exists.
        return InputError(text_limit_message(text), "corrupt-image")
    return InputError(f"cannot decode image: {text}", "corrupt-image")
