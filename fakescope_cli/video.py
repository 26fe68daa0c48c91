"""Video and animation files: what the container says, and frames sampled for the detector.

A video is one evidence file like an image: hashed whole, read-only, its provenance read (C2PA,
XMP, QuickTime/Matroska tags), then a few frames sampled across its length and each scored by the
selected detector as a still image; the per-frame scores aggregate into one p_fake (AGGREGATE_RULE).
Decoding uses PyAV (FFmpeg in its wheels), an optional extra: without it a video still gets its
custody and provenance, and the record says how to get frame analysis.

Bounds: the declared picture size against --max-pixels before anything is decoded; the declared
duration against MAX_DURATION_S; frames decoded per sample and per file (MAX_DECODED_FRAMES); time
per file is the engine's worker timeout.
"""

from __future__ import annotations

import importlib.util
import io
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from fakescope_cli.errors import InputError
from fakescope_cli.media import Media

# Sniffing and the constants the image path needs live in video_formats (no PyAV, no Media subclass):
# a scan of images never imports this module.
from fakescope_cli.video_formats import (  # noqa: F401  (video's public names)
    ANIMATED_FORMATS,
    DEFAULT_FRAMES,
    VIDEO_EXTENSIONS,
    VIDEO_FORMATS,
    has_video_extension,
    sniff_video,
)

MAX_FRAMES = 256  # --frames at most (cli.py keeps a copy: --help imports nothing of this)
MAX_DURATION_S = 24 * 3600.0  # a declared duration beyond a day is refused, not walked
MAX_DECODED_FRAMES = 2_000  # frames decoded per file, samples together (long GOPs cost frames per seek)
MAX_DECODED_PER_SAMPLE = 300  # frames decoded forward from a seek point to reach one sample time
SEQUENTIAL_FRAMES = 900  # clips up to about this many frames are decoded in one pass, not seeked
RECORD_TAG_CHARS = 1000  # characters of one container tag kept in the record
FRAME_MEMORY = 512 << 20  # bytes of decoded RGB frames held at once (16 frames of 4K fit; of 8K, 5)
VIDEO_EXTRA_HINT = "frame analysis needs PyAV: pip install 'fakescope[video]'"
AGGREGATE_RULE = "p75"  # the 75th percentile of the frame scores (linear interpolation)


def pyav_available() -> bool:
    return importlib.util.find_spec("av") is not None


def aggregate(scores: list[float]) -> float:
    """One p_fake for a clip: the 75th percentile of its frame scores. A generated stretch spliced
    into real footage (a quarter of the frames or more) lifts it; one odd frame does not."""
    ordered = sorted(scores)
    if not ordered:
        raise ValueError("no frame scores")
    pos = 0.75 * (len(ordered) - 1)
    low, frac = int(math.floor(pos)), pos - math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * frac


def frames_that_fit(facts: VideoFacts, n: int) -> int:
    """n, or fewer when n decoded RGB frames of this size would pass FRAME_MEMORY (at least 1)."""
    frame_bytes = max(1, (facts.width or 0) * (facts.height or 0) * 3)
    return max(1, min(n, FRAME_MEMORY // frame_bytes))


def sample_times(duration: float | None, n: int) -> list[float]:
    """n instants spread evenly over the clip, at the middle of n equal parts."""
    if not duration or duration <= 0:
        return []
    return [duration * (i + 0.5) / n for i in range(n)]


@dataclass
class Frame:
    t: float  # seconds from the start of the stream
    image: Any  # PIL RGB image
    key: bool = False


@dataclass
class VideoFacts:
    """What the container declares (BMFF walker, then PyAV where installed)."""

    container: str
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    codecs: list[str] = field(default_factory=list)
    frame_count: int | None = None  # declared, where the container says
    tags: dict[str, str] = field(default_factory=dict)
    xmp: list[bytes] = field(default_factory=list)
    c2pa_box: bool = False
    creation_time: str | None = None
    problems: list[str] = field(default_factory=list)
    truncated: bool = False

    def to_record(self) -> dict[str, Any]:
        return {
            "container": self.container,
            "duration_s": None if self.duration_s is None else round(self.duration_s, 3),
            "codecs": list(self.codecs),
            "width": self.width,
            "height": self.height,
            "fps": None if self.fps is None else round(self.fps, 3),
            "frame_count": self.frame_count,
            "creation_time": self.creation_time,
            # Values are cut for the record (the evidence readers saw them whole, up to 1 MiB).
            "tags": {k: v if len(v) <= RECORD_TAG_CHARS else v[:RECORD_TAG_CHARS - 1] + "…"
                     for k, v in self.tags.items()},
        }


class VideoMedia(Media):
    """A video file behind the Media interface that the evidence readers use: `format` is the
    container, `info` carries its XMP packet, the pixels are frames (see `sample_frames`)."""

    container: str = "MP4"

    @classmethod
    def from_media(cls, media: Media, container: str) -> VideoMedia:
        video = cls(path=media.path, data=media.data, size=media.size, mtime_ns=media.mtime_ns,
                    max_pixels=media.max_pixels, allow_pixels=media.allow_pixels)
        video.container = container
        return video

    @cached_property
    def format(self) -> str | None:  # type: ignore[override]
        return self.container

    @property
    def header_error(self) -> InputError | None:
        return None  # the container is read by facts/bmff; no Pillow header to fail

    def _open_header(self) -> Any:
        raise InputError("a video has no still-image header", "unsupported-format")

    @property
    def width(self) -> int | None:
        return self.facts.width

    @property
    def height(self) -> int | None:
        return self.facts.height

    @property
    def info(self) -> dict[str, Any]:
        return {"xmp": self.facts.xmp[0]} if self.facts.xmp else {}

    @cached_property
    def frame_count(self) -> int | None:
        return self.facts.frame_count

    def pixels(self) -> Any:
        raise InputError("a video's frames are analysed one by one", "unsupported-format")

    @cached_property
    def facts(self) -> VideoFacts:
        facts = VideoFacts(self.container)
        if self.container in ("MP4", "MOV"):
            from fakescope_cli import bmff

            info = bmff.read(self.data)
            track = info.video
            facts.duration_s = info.duration_s
            facts.creation_time = info.creation_time
            facts.tags = dict(info.tags)
            facts.xmp = list(info.xmp)
            facts.c2pa_box = info.c2pa_box
            facts.problems = list(info.problems)
            facts.truncated = info.cut
            if track is not None:
                facts.width, facts.height = track.width, track.height
                facts.codecs = [t.codec for t in info.tracks if t.codec]
        return facts

    def check_limits(self, facts: VideoFacts) -> None:
        """Refuse a stream whose declared size or length is past the bounds, before decoding."""
        w, h = facts.width or 0, facts.height or 0
        if w * h > self.max_pixels:
            raise InputError(f"video frames of {w}x{h} = {w * h} pixels exceed the limit of {self.max_pixels} "
                             "(decompression-bomb guard; raise with --max-pixels)", "pixel-limit")
        if facts.duration_s is not None and facts.duration_s > MAX_DURATION_S:
            raise InputError(f"declared duration {facts.duration_s:.0f} s is over the {MAX_DURATION_S:.0f} s "
                             "limit (a forged or endless stream)", "duration-limit")

    def probe(self) -> Any:
        """Open the container with PyAV, fill the facts it knows better (codecs, fps, tags of
        every container), check the limits; returns the open container. Raises InputError."""
        import av

        facts = self.facts
        try:
            container = av.open(io.BytesIO(self.data), mode="r", metadata_errors="replace")
        except (av.FFmpegError, ValueError, OSError, EOFError, IndexError) as exc:
            raise _av_error(exc) from None
        try:
            streams = container.streams.video
            if not streams:
                raise InputError("no video stream in the container", "no-video-stream")
            vs = streams[0]
            ctx = vs.codec_context
            facts.width = facts.width or ctx.width or None
            facts.height = facts.height or ctx.height or None
            if ctx.width and ctx.height:  # the decoder's size is the one that will be allocated
                facts.width, facts.height = max(facts.width or 0, ctx.width), max(facts.height or 0, ctx.height)
            rate = vs.average_rate or vs.guessed_rate
            facts.fps = float(rate) if rate else None
            if facts.duration_s is None:
                if container.duration:
                    facts.duration_s = container.duration / 1_000_000
                elif vs.duration and vs.time_base:
                    facts.duration_s = float(vs.duration * vs.time_base)
            facts.frame_count = vs.frames or None
            names = [s.codec_context.name for s in container.streams if s.codec_context is not None]
            facts.codecs = [n for n in names if n] or facts.codecs
            for key, value in {**dict(container.metadata), **dict(vs.metadata)}.items():
                if not isinstance(value, str) or str(key).lower() in _HOUSEKEEPING:
                    continue
                if "<x:xmpmeta" in value[:4096] and len(facts.xmp) < 4:
                    facts.xmp.append(value.encode("utf-8")[:4 << 20])  # Matroska/FFmpeg XMP tag: to the XMP reader
                elif len(facts.tags) < 256:
                    facts.tags.setdefault(str(key)[:200], value[:1 << 20])
            self.check_limits(facts)
        except InputError:
            container.close()
            raise
        except Exception as exc:  # the native layer on hostile bytes: one error record, never a crash
            container.close()
            raise _av_error(exc) from None
        return container

    def sample_frames(self, n: int) -> list[Frame]:
        """Up to n frames spread over the clip (fewer where FRAME_MEMORY would not hold them all),
        decoded within the bounds. Raises InputError."""
        container = self.probe()
        try:
            return _sample(container, self.facts, frames_that_fit(self.facts, n))
        except InputError:
            raise
        except Exception as exc:  # the native decoder on hostile bytes
            raise _av_error(exc) from None
        finally:
            container.close()


# Tags FFmpeg derives from the container's structure: they say nothing the record does not already.
_HOUSEKEEPING = frozenset({"major_brand", "minor_version", "compatible_brands", "handler_name", "vendor_id",
                           "language", "duration"})


def _sample(container: Any, facts: VideoFacts, n: int) -> list[Frame]:
    vs = container.streams.video[0]
    vs.thread_type = "AUTO"
    expected = (facts.duration_s or 0) * (facts.fps or 0)
    times = sample_times(facts.duration_s, n)
    if not times or expected <= SEQUENTIAL_FRAMES:
        return _sequential(container, vs, times, n)
    return _seeking(container, vs, times)


def _frame_time(frame: Any) -> float:
    return float(frame.time) if frame.time is not None else 0.0


def _sequential(container: Any, vs: Any, times: list[float], n: int) -> list[Frame]:
    """One pass from the start: the frame at or after each sample time. Without a known duration (a
    live or endless stream) frames are kept at a stride that doubles whenever more than n are held,
    so that up to n frames spread evenly over what the decode bound let us read."""
    out: list[Frame] = []
    decoded = 0
    pending = list(times)
    stride = 1
    last: tuple[Any, bool] | None = None  # the latest frame decoded, and whether it was taken
    for frame in container.decode(vs):
        decoded += 1
        t = _frame_time(frame)
        if times:
            taken = False
            while pending and t >= pending[0]:
                pending.pop(0)
                if not taken:
                    out.append(Frame(t, frame.to_image(), bool(frame.key_frame)))
                    taken = True
            last = (frame, taken)
            if not pending:
                break
        elif (decoded - 1) % stride == 0:
            out.append(Frame(t, frame.to_image(), bool(frame.key_frame)))
            if len(out) > n:
                out, stride = out[::2], stride * 2
        if decoded >= MAX_DECODED_FRAMES:
            break
    if pending and last is not None and not last[1] and decoded < MAX_DECODED_FRAMES:
        # The last sample time falls after the last frame's start (inside its display time): that frame.
        out.append(Frame(_frame_time(last[0]), last[0].to_image(), bool(last[0].key_frame)))
    if not out:
        raise InputError("the video stream holds no decodable frame" if decoded == 0 else
                         "no frame could be decoded at the sample times", "corrupt-video")
    return out


def _seeking(container: Any, vs: Any, times: list[float]) -> list[Frame]:
    """Seek to the key frame before each sample time, decode forward to it (bounded)."""
    out: list[Frame] = []
    decoded = 0
    base = vs.time_base
    for target in times:
        if decoded >= MAX_DECODED_FRAMES:
            break
        container.seek(int(target / base) if base else int(target * 1_000_000), stream=vs, backward=True)
        chosen = None
        for step, frame in enumerate(container.decode(vs)):
            decoded += 1
            chosen = frame
            if _frame_time(frame) >= target or step >= MAX_DECODED_PER_SAMPLE or decoded >= MAX_DECODED_FRAMES:
                break
        if chosen is not None and not any(abs(f.t - _frame_time(chosen)) < 1e-6 for f in out):
            out.append(Frame(_frame_time(chosen), chosen.to_image(), bool(chosen.key_frame)))
    if not out:
        raise InputError("no frame could be decoded at the sample times", "corrupt-video")
    return out


def animation_frames(media: Media, n: int) -> list[Frame]:
    """Up to n frames of an animated GIF, APNG or WebP, evenly spaced, with their times (Pillow).
    Frames are decoded in order (these formats build each frame on the previous ones), at most
    MAX_DECODED_FRAMES of them."""
    from PIL import Image

    from fakescope_cli.imageops import to_rgb8

    count = min(media.frame_count or 1, MAX_DECODED_FRAMES)
    picks = {min(count - 1, int(count * (i + 0.5) / n)) for i in range(min(n, count))}
    out: list[Frame] = []
    with Image.open(io.BytesIO(media.data)) as img:
        elapsed = 0.0
        for index in range(max(picks) + 1):
            if index:
                img.seek(index)
            img.load()  # WebP reports a frame's duration only once it is decoded
            if index in picks:
                start = img.info.get("timestamp", elapsed * 1000) / 1000
                out.append(Frame(round(float(start), 3), to_rgb8(img.convert("RGBA") if img.mode == "P" else img).copy()))
            elapsed += float(img.info.get("duration") or 0) / 1000
    return out


class FrameMedia(Media):
    """One sampled frame handed to a detector as a still image (detectors read `rgb()`, `format`)."""

    @classmethod
    def of(cls, source: Media, frame: Frame, fmt: str | None) -> FrameMedia:
        media = cls(path=f"{source.path}#t={frame.t:.3f}", data=b"", size=0, mtime_ns=source.mtime_ns,
                    max_pixels=source.max_pixels, allow_pixels=True)
        media.__dict__["_rgb"] = frame.image
        media.__dict__["format"] = fmt
        return media

    def pixels(self) -> Any:
        return self.__dict__["_rgb"]

    @property
    def width(self) -> int | None:
        return int(self.__dict__["_rgb"].size[0])

    @property
    def height(self) -> int | None:
        return int(self.__dict__["_rgb"].size[1])

    @property
    def info(self) -> dict[str, Any]:
        return {}


def _av_error(exc: BaseException) -> InputError:
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if "moov atom not found" in lowered or "end of file" in lowered or isinstance(exc, EOFError) \
            or "truncat" in lowered:
        return InputError(f"truncated or incomplete video: {text[:300]}", "truncated")
    return InputError(f"cannot decode video: {text[:300]}", "corrupt-video")
