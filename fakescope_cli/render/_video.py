"""The video fields of a record as each output shows them: a one-line summary (table, SARIF), CSV
cells, and the HTML strip of sampled frames with their scores."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

STRIP_THUMB = 160  # longest side of a frame in the HTML strip, in pixels
CSV_COLUMNS = ("duration_s", "codecs", "fps", "frames_scored", "frame_scores")


def video_of(record: dict[str, Any]) -> dict[str, Any] | None:
    video = record.get("video")
    return video if isinstance(video, dict) else None


def _scores(video: dict[str, Any]) -> list[float]:
    return [float(f["p_fake"]) for f in video.get("timeline") or []
            if isinstance(f, dict) and isinstance(f.get("p_fake"), (int, float))]


def summary_line(record: dict[str, Any]) -> str | None:
    """'MP4 h264, 12.0 s at 30 fps; 8 frames scored 12–64%' (None for a still image)."""
    video = video_of(record)
    if video is None:
        return None
    parts = [str(video.get("container") or "")]
    codecs = [str(c) for c in video.get("codecs") or []]
    if codecs:
        parts[0] += f" {codecs[0]}"
    length = video.get("duration_s")
    fps = video.get("fps")
    if isinstance(length, (int, float)):
        parts.append(f"{length:.1f} s" + (f" at {fps:g} fps" if isinstance(fps, (int, float)) else ""))
    scores = _scores(video)
    if scores:
        low, high = min(scores), max(scores)
        parts.append(f"{len(scores)} frame{'s' if len(scores) != 1 else ''} scored "
                     f"{low * 100:.0f}–{high * 100:.0f}%")
    else:
        parts.append(f"{video.get('frames_sampled', 0)} frames scored")
    return ", ".join(p for p in parts if p)


def csv_cells(record: dict[str, Any]) -> dict[str, str]:
    """The appended CSV columns: empty for a still image. frame_scores is `t:p_fake` pairs, `;`-joined."""
    video = video_of(record)
    if video is None:
        return dict.fromkeys(CSV_COLUMNS, "")

    def number(value: Any) -> str:
        return "" if not isinstance(value, (int, float)) else f"{value:.6f}".rstrip("0").rstrip(".") or "0"

    pairs = [f"{number(f.get('t'))}:{number(f.get('p_fake'))}" for f in video.get("timeline") or []
             if isinstance(f, dict)]
    return {"duration_s": number(video.get("duration_s")), "codecs": ";".join(str(c) for c in video.get("codecs") or []),
            "fps": number(video.get("fps")), "frames_scored": number(video.get("frames_scored")),
            "frame_scores": ";".join(pairs)}


def sarif_properties(record: dict[str, Any]) -> dict[str, Any]:
    """SARIF result properties for a video: its facts and the frame timeline (empty for a still)."""
    video = video_of(record)
    if video is None:
        return {}
    keep = ("container", "duration_s", "codecs", "fps", "frames_sampled", "frames_scored", "timeline")
    return {"video": {k: video[k] for k in keep if k in video}}


def frame_thumbnails(record: dict[str, Any]) -> tuple[list[str | None], str]:
    """Data URIs of the record's sampled frames, decoded again from the file (the same sampling rule
    gives the same frames), and a note; none when the file changed since the scan or cannot be read."""
    from fakescope_cli.errors import InputError
    from fakescope_cli.media import Media
    from fakescope_cli.video import (
        ANIMATED_FORMATS,
        VideoMedia,
        animation_frames,
        pyav_available,
        sniff_video,
    )

    video = video_of(record) or {}
    n = len(video.get("timeline") or [])
    if not n:
        return [], ""
    try:
        media = Media.open(str(record.get("path", "")))
        if media.sha256 != record.get("sha256"):
            return [], "file changed since scan: frames not shown"
        container = sniff_video(media.data[:64])
        if container is not None:
            if not pyav_available():
                return [], "frames not shown: PyAV is not installed"
            frames = VideoMedia.from_media(media, container).sample_frames(n)
        elif media.format in ANIMATED_FORMATS:
            frames = animation_frames(media, n)
        else:
            return [], ""
    except (InputError, OSError, ValueError) as exc:
        return [], f"frames not shown: {getattr(exc, 'message', exc)}"
    uris: list[str | None] = []
    for frame in frames[:n]:
        img = frame.image.convert("RGB")
        img.thumbnail((STRIP_THUMB, STRIP_THUMB))
        out = io.BytesIO()
        img.save(out, format="JPEG", quality=80)
        uris.append("data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii"))
    return uris + [None] * (n - len(uris)), ""


def strip_html(record: dict[str, Any], thumbnails: bool = True) -> str:
    """The HTML strip: each sampled frame (when thumbnails are wanted) with its time and score."""
    video = video_of(record)
    if video is None or not video.get("timeline"):
        return ""
    timeline = [f for f in video["timeline"] if isinstance(f, dict)]
    uris, note = frame_thumbnails(record) if thumbnails else ([], "")
    cells = []
    for i, frame in enumerate(timeline):
        p = frame.get("p_fake")
        t = frame.get("t") if isinstance(frame.get("t"), (int, float)) else 0.0
        score = f"{p * 100:.0f}%" if isinstance(p, (int, float)) else "no score"
        uri = uris[i] if i < len(uris) else None
        pic = (f'<img src="{uri}" alt="frame at {t:.2f} s" style="max-width:{STRIP_THUMB}px;'
               'display:block">' if uri else "")
        bar = (f'<div style="height:4px;background:#d33;width:{max(2, int(p * 100))}%"></div>'
               if isinstance(p, (int, float)) else "")
        cells.append(f'<figure style="margin:0;flex:0 0 auto">{pic}{bar}<figcaption>'
                     f"{t:.2f} s · {html.escape(score)}</figcaption></figure>")
    caption = html.escape(summary_line(record) or "")
    extra = f' <span class="muted">{html.escape(note)}</span>' if note else ""
    return (f'<h4>Frames</h4><p class="muted">{caption}; p_fake is the 75th percentile of the frame scores.'
            f'{extra}</p><div class="frames" style="display:flex;gap:.4rem;overflow-x:auto">{"".join(cells)}</div>')
