"""Which files are videos or animations, by name and by leading bytes; no decoding here.

Apart from video.py so that scanning images (inputs.py, analyze.py) never imports the video
machinery (PyAV hooks, the VideoMedia class): ~2 ms of a one-file scan.
"""

from __future__ import annotations

import os

VIDEO_EXTENSIONS = frozenset("mp4 m4v mov qt 3gp 3g2 webm mkv avi".split())
VIDEO_FORMATS = ("MP4", "MOV", "WEBM", "MKV", "AVI")
ANIMATED_FORMATS = frozenset({"GIF", "PNG", "WEBP"})  # animated GIF, APNG, animated WebP

# Chosen by measurement (bench/results/video.txt): the smallest N whose p_fake stayed within 0.02 of
# the 32-frame value on the benchmark clips; 8 moved it by up to 0.06 for about half the time per clip.
DEFAULT_FRAMES = 16

_AUDIO_BRANDS = frozenset({b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "})


def sniff_video(head: bytes) -> str | None:
    """Name the video container from its leading bytes (at least 32), or None.

    ISO BMFF with the QuickTime brand 'qt  ' (or an old QuickTime file without 'ftyp') is MOV, other
    brands MP4 (HEIF/AVIF images are named by media.sniff_format first); EBML with DocType 'webm'
    is WEBM, other EBML MKV; RIFF 'AVI ' is AVI."""
    if head[4:8] == b"ftyp":
        if head[8:12] in _AUDIO_BRANDS:
            return None  # iTunes audio (.m4a, .m4b): no pictures to look at
        return "MOV" if head[8:12] == b"qt  " else "MP4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return "MOV"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "WEBM" if b"webm" in head[:64] else "MKV"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI"
    return None


def has_video_extension(path: str) -> bool:
    return os.path.splitext(path)[1].lower().lstrip(".") in VIDEO_EXTENSIONS
