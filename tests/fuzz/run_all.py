#!/usr/bin/env python3
"""Run the fuzz harnesses one after another and summarise them.

    python tests/fuzz/run_all.py --seconds 600                 # every harness, 10 minutes each
    python tests/fuzz/run_all.py --seconds 60 --only exif,xmp   # a shake-out of two

Each harness runs under `nice -n 10` with libFuzzer's -max_total_time, -timeout=10 and
-rss_limit_mb=2048; its corpus lives in --workdir (kept between runs, never in the repo) and is
seeded from the shared fixtures. A crash ends a libFuzzer run, so the harness is restarted on the
same corpus until its time is used (at most --max-restarts times, and not when the crash recurs at
once). Logs go to --logdir/<harness>.log; the per-harness results are merged into --summary.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
HARNESSES = ("exif", "png_chunks", "xmp", "watermark", "c2pa", "media", "bmff")


def _stats(text: str) -> dict[str, int]:
    """Executions, coverage and corpus size from one libFuzzer run's output."""
    out: dict[str, int] = {}
    final = re.search(r"stat::number_of_executed_units:\s*(\d+)", text)
    status = re.findall(r"^#(\d+)\s+\S+\s+cov: (\d+) ft: (\d+) corp: (\d+)/", text, re.MULTILINE)
    if final:
        out["execs"] = int(final.group(1))
    elif status:
        out["execs"] = int(status[-1][0])
    if status:
        out["cov"], out["ft"], out["corpus"] = (int(v) for v in status[-1][1:])
    done = re.search(r"^Done (\d+) runs in (\d+) second", text, re.MULTILINE)
    if done:
        out["fuzz_seconds"] = int(done.group(2))
    return out


def run_harness(name: str, seconds: int, workdir: Path, logdir: Path, max_restarts: int) -> dict:
    script = HERE / f"fuzz_{name}.py"
    base = workdir / name
    seeds, corpus, artifacts = base / "seeds", base / "corpus", base / "artifacts"
    for d in (corpus, artifacts):
        d.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(script), "--write-seeds", str(seeds)], check=True,
                   capture_output=True, cwd=REPO)
    log_path = logdir / f"{name}.log"
    result: dict = {"harness": name, "budget_s": seconds, "runs": 0, "execs": 0, "wall_s": 0.0,
                    "fuzz_s": 0, "findings": [], "cov": 0, "ft": 0, "corpus": 0}
    start = time.monotonic()
    with log_path.open("w", encoding="utf-8") as log:
        while result["runs"] <= max_restarts:
            left = seconds - result["fuzz_s"]
            if left < 10:
                break
            before = {p.name for p in artifacts.iterdir()}
            cmd = ["nice", "-n", "10", sys.executable, str(script), f"-max_total_time={left}",
                   "-print_final_stats=1", f"-artifact_prefix={artifacts}/", str(corpus), str(seeds)]
            log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n")
            log.flush()
            t0 = time.monotonic()
            proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, errors="replace",
                                  timeout=left + 600)
            wall = time.monotonic() - t0
            text = proc.stdout + proc.stderr
            # Instrumentation chatter is hundreds of lines per start; the rest is kept.
            log.write("\n".join(ln for ln in text.splitlines() if not ln.startswith("INFO: Instrumenting")))
            log.write(f"\n=== exit {proc.returncode} after {wall:.0f} s\n")
            log.flush()
            stats = _stats(text)
            result["runs"] += 1
            result["execs"] += stats.get("execs", 0)
            result["fuzz_s"] += stats.get("fuzz_seconds", int(wall))
            for key in ("cov", "ft", "corpus"):
                result[key] = max(result[key], stats.get(key, 0))
            new = sorted({p.name for p in artifacts.iterdir()} - before)
            result["findings"] += new
            if proc.returncode == 0:
                break
            # No artifact, or a crash while loading the corpus (it would recur): restarting won't help.
            if not new or "INITED" not in text:
                result["error"] = f"exit {proc.returncode} after {wall:.0f} s"
                break
    result["wall_s"] = round(time.monotonic() - start, 1)
    return result


def write_summary(logdir: Path, summary: Path) -> None:
    rows = []
    for name in HARNESSES:
        path = logdir / f"{name}.json"
        if path.exists():
            rows.append(json.loads(path.read_text()))
    lines = [
        "Fuzzing summary (atheris + libFuzzer; tests/fuzz/run_all.py). One row per harness, its last run.",
        "Options: -timeout=10 -rss_limit_mb=2048, nice -n 10, on a shared 2-core machine.",
        "",
        f"{'harness':<11} {'fuzz s':>7} {'wall s':>7} {'runs':>4} {'execs':>9} {'exec/s':>7} "
        f"{'cov':>5} {'ft':>6} {'corpus':>6}  findings",
    ]
    for r in rows:
        rate = r["execs"] / r["fuzz_s"] if r["fuzz_s"] else 0.0
        findings = ", ".join(r["findings"]) or "none"
        if r.get("error"):
            findings += f" ({r['error']})"
        lines.append(f"{r['harness']:<11} {r['fuzz_s']:>7} {r['wall_s']:>7.0f} {r['runs']:>4} {r['execs']:>9} "
                     f"{rate:>7.1f} {r['cov']:>5} {r['ft']:>6} {r['corpus']:>6}  {findings}  [{r['finished']}]")
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=600, help="fuzzing time per harness")
    ap.add_argument("--only", default=",".join(HARNESSES), help="comma-separated harness names")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/fakescope-fuzz"))
    ap.add_argument("--logdir", type=Path, default=REPO.parent / "notes" / "fuzz")
    ap.add_argument("--summary", type=Path, default=REPO / "bench" / "results" / "fuzz.txt")
    ap.add_argument("--max-restarts", type=int, default=10)
    args = ap.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(names) - set(HARNESSES)
    if unknown:
        ap.error(f"unknown harness(es): {sorted(unknown)}")
    args.logdir.mkdir(parents=True, exist_ok=True)
    failed = False
    for name in names:
        result = run_harness(name, args.seconds, args.workdir, args.logdir, args.max_restarts)
        result["finished"] = time.strftime("%Y-%m-%d %H:%M")
        (args.logdir / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
        write_summary(args.logdir, args.summary)
        print(f"{name}: {result['execs']} execs in {result['fuzz_s']} s, findings: {result['findings'] or 'none'}",
              flush=True)
        failed |= bool(result["findings"]) or "error" in result
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
