"""Video throughput: the default detector on frames of a 1080p H.264 clip against decoding alone,
the cost of --frames N, and the time to scan a folder of short clips.

Prints, from one run on this machine (clips are encoded here with PyAV, FFmpeg's libx264):
1. decode only: every frame of the 1080p clip decoded and converted to RGB (PyAV/FFmpeg), frames/s;
   and the sampler's decode of the N sampled frames alone (seeking, as a scan does), frames/s;
2. detector: the same N frames scored by the default (builtin) detector, frames/s; and the whole
   per-clip pipeline (sample + score) against the sampler's decode alone. Target: >= 0.5x;
3. --frames N from 2 to 32: seconds per clip, and how far p_fake moves from the 32-frame value;
4. `fakescope scan` of a folder of 100 short clips (2 s, 640x360, 24 fps), no cache, default workers,
   at the default --frames and at 8.

    python bench/bench_video.py [--seconds 10] [--clips 100] [--out bench/results/video.txt]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fakescope_cli.analyze import Analyzer, ScanConfig  # noqa: E402
from fakescope_cli.inputs import Candidate  # noqa: E402
from fakescope_cli.media import Media  # noqa: E402
from fakescope_cli.video import DEFAULT_FRAMES, FrameMedia, VideoMedia  # noqa: E402


def encode(path: Path, seconds: float, size: tuple[int, int], fps: int = 30, seed: int = 0) -> Path:
    """Moving textured content (so that the encoder has real work), x264 'veryfast', GOP 2 s."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = rng.integers(0, 255, (h // 8 + 2, w // 8 + 2, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    out = av.open(str(path), "w")
    stream = out.add_stream("libx264", rate=fps, options={"preset": "veryfast", "g": str(2 * fps)})
    stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
    for i in range(int(seconds * fps)):
        dy, dx = i % 16, (2 * i) % 16
        frame = np.ascontiguousarray(base[dy:dy + h, dx:dx + w])
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    return path


def decode_all(path: Path) -> tuple[int, float]:
    t0 = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        n = sum(1 for frame in container.decode(stream) if frame.to_image() is not None)
    return n, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the 1080p clip")
    ap.add_argument("--clips", type=int, default=100)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clip = encode(work / "1080p.mp4", args.seconds, (1920, 1080))
        say(f"clip: 1920x1080 H.264 (libx264 veryfast, GOP 60), {args.seconds:g} s at 30 fps, "
            f"{clip.stat().st_size / 1e6:.1f} MB")
        analyzer = Analyzer(ScanConfig(cache_dir=None))
        detector = analyzer.detector
        media = VideoMedia.from_media(Media.open(clip), "MP4")

        n_all, t_all = decode_all(clip)
        say(f"1. decode only, every frame to RGB (PyAV/FFmpeg): {n_all} frames in {t_all:.2f} s = "
            f"{n_all / t_all:.1f} frames/s")
        for n in (8, 32):
            t0 = time.perf_counter()
            frames = VideoMedia.from_media(Media.open(clip), "MP4").sample_frames(n)
            t_decode = time.perf_counter() - t0
            t0 = time.perf_counter()
            for frame in frames:
                detector.analyze(FrameMedia.of(media, frame, "MP4"))
            t_detect = time.perf_counter() - t0
            k = len(frames)
            say(f"2. N={n}: sampler decode of {k} frames {t_decode:.2f} s = {k / t_decode:.1f} frames/s; "
                f"builtin detector on them {t_detect:.2f} s = {k / t_detect:.1f} frames/s "
                f"(detector/decode-all rate {(k / t_detect) / (n_all / t_all):.2f}x); "
                f"pipeline {k / (t_decode + t_detect):.1f} frames/s = "
                f"{(k / (t_decode + t_detect)) / (k / t_decode):.2f}x the sampler's decode alone")

        say("3. --frames N per clip (the 1080p clip, 4 short 640x360 clips, one 90 s 640x360 clip that is "
            "sampled by seeking): seconds per clip, max |p_fake(N) - p_fake(32)| over the clips")
        short = [encode(work / f"s{i}.mp4", 4.0, (640, 360), 24, seed=i + 1) for i in range(4)]
        short.append(encode(work / "long.mp4", 90.0, (640, 360), 24, seed=9))
        reference: dict[Path, float] = {}
        for n in (32, 16, 8, 4, 2):
            analyzer.config.frames = n
            times, moves = [], []
            for path in [clip, *short]:
                t0 = time.perf_counter()
                record = analyzer.compute(Candidate(str(path), True))
                times.append(time.perf_counter() - t0)
                p = record["detector"]["p_fake"]
                reference.setdefault(path, p)
                moves.append(abs(p - reference[path]))
            say(f"   N={n:2d}: 1080p {times[0]:.2f} s, 640x360 {statistics.mean(times[1:-1]):.2f} s/clip, "
                f"90 s clip {times[-1]:.2f} s; max |dp| {max(moves):.3f}")

        folder = work / "clips"
        folder.mkdir()
        t0 = time.perf_counter()
        for i in range(args.clips):
            encode(folder / f"{i:03d}.mp4", 2.0, (640, 360), 24, seed=100 + i)
        say(f"4. made {args.clips} clips (2 s, 640x360, 24 fps) in {time.perf_counter() - t0:.1f} s")
        for n in (DEFAULT_FRAMES, 8):
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "fakescope_cli", "scan", "-q", "-f", "jsonl", "--no-cache",
                                   "--frames", str(n), str(folder)], capture_output=True, text=True)
            wall = time.perf_counter() - t0
            records = proc.stdout.count("\n")
            say(f"   fakescope scan --frames {n} of {args.clips} clips: {wall:.1f} s ({wall / args.clips:.2f} s/clip), "
                f"{records} records, exit {proc.returncode}")
    if args.out:
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
