"""How scan workers start: forked straight from the scan when that is safe, from a fork server otherwise.

Each check runs in a fresh interpreter, because whether forking is safe depends on what the process
has imported and started (this pytest process has onnxruntime loaded by other tests).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import DATA, REPO

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork is used on Linux only")


def run_python(code: str, *args: str, timeout: float = 120) -> dict:
    """Run `code` in a fresh interpreter with `args` as sys.argv[1:]; its last stdout line is JSON."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, timeout=timeout,
                          cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


@pytest.mark.slow
def test_fork_is_safe_only_without_threads_or_threaded_native_libraries():
    out = run_python("""
        import json, threading
        from fakescope_cli.workers import fork_is_safe
        clean = fork_is_safe()
        stop = threading.Event()
        t = threading.Thread(target=stop.wait); t.start()
        with_thread = fork_is_safe()
        stop.set(); t.join()
        after_thread = fork_is_safe()
        import onnxruntime
        with_ort = fork_is_safe()
        print(json.dumps([clean, with_thread, after_thread, with_ort]))
    """)
    assert out == [True, False, True, False]


POOL_SCRIPT = """
    import json, sys, threading
    from fakescope_cli.analyze import Analyzer, ScanConfig
    from fakescope_cli.inputs import InputExpander
    from fakescope_cli.interrupts import held
    from fakescope_cli.workers import WorkerPool

    folder, with_thread = sys.argv[1], sys.argv[2] == "1"
    stop = threading.Event()
    if with_thread:  # stands in for Rich's progress refresh thread
        threading.Thread(target=stop.wait, daemon=True).start()
    config = ScanConfig()
    cands = list(InputExpander().expand([folder]))
    with held(), WorkerPool(config, 2, 60) as pool:  # as in a scan
        methods = [w.start_method for w in pool.workers]
        status = []
        for w in pool.workers:
            fields = dict(line.split(":", 1) for line in open(f"/proc/{w.proc.pid}/status"))
            status.append({k: int(fields[k].strip(), 16) for k in ("SigIgn", "SigCgt", "SigBlk")})
        import signal
        parent_blocked = sorted(int(x) for x in signal.pthread_sigmask(signal.SIG_BLOCK, []))
        records = list(pool.map(cands))
    stop.set()
    analyzer = Analyzer(config)  # loaded only now, after the workers, so it cannot change how they start
    expected = [analyzer.analyze(c) for c in cands]
    strip = lambda r: {k: v for k, v in r.items() if k != "custody"}
    print(json.dumps({"methods": methods, "status": status, "parent_blocked": parent_blocked, "n": len(records),
                      "same": [strip(a) == strip(b) for a, b in zip(records, expected)],
                      "p": [r["p_fake"] for r in records]}))
"""


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Six pool images (three of each label), copied so the scan sees one small folder."""
    import csv
    import shutil

    rows = list(csv.DictReader((DATA / "manifest.csv").open(encoding="utf-8")))
    picked = [r for r in rows if r["label"] == "real"][:3] + [r for r in rows if r["label"] != "real"][:3]
    folder = tmp_path_factory.mktemp("photos")
    for i, row in enumerate(picked):
        src = DATA / row["path"]
        shutil.copyfile(src, folder / f"{i}{src.suffix.lower()}")
    return folder


def _pool_run(photos: Path, with_thread: bool) -> dict:
    return run_python(POOL_SCRIPT, str(photos), "1" if with_thread else "0", timeout=180)


@pytest.mark.slow
def test_workers_fork_from_a_single_threaded_scan_and_give_the_in_process_records(photos):
    out = _pool_run(photos, with_thread=False)
    assert out["methods"] == ["fork", "fork"]
    assert out["n"] == 6 and all(out["same"]), out
    assert len(set(out["p"])) > 1  # real detector scores, not one constant
    sigint, sigterm = 1 << (2 - 1), 1 << (15 - 1)
    for st in out["status"]:
        # Ctrl-C is the parent's business; the parent's SIGTERM-as-Ctrl-C handler is not inherited
        assert st["SigIgn"] & sigint
        assert not st["SigCgt"] & sigterm and not st["SigIgn"] & sigterm
        # both were held back around the fork; the worker lets them through again, and so does the parent
        assert not st["SigBlk"] & (sigint | sigterm)
    assert out["parent_blocked"] == []


@pytest.mark.slow
def test_a_running_thread_sends_workers_to_the_fork_server(photos):
    out = _pool_run(photos, with_thread=True)
    assert out["methods"] == ["forkserver", "forkserver"]
    assert out["n"] == 6 and all(out["same"]), out


def _descendants(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            kids = [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            continue
        for k in kids:
            out += [k, *_descendants(k)]
    return out


@pytest.mark.slow
def test_interactive_scan_with_progress_bar_still_forks_its_workers(photos, tmp_path):
    """The bar's refresh thread starts with the first record, after the workers: no fork server."""
    import os
    import pty
    import time

    many = tmp_path / "many"
    many.mkdir()
    for i in range(60):
        src = sorted(photos.iterdir())[i % 6]
        (many / f"{i:03d}{src.suffix}").write_bytes(src.read_bytes())
    master, slave = pty.openpty()  # stderr is a terminal, so the progress bar is on
    os.set_blocking(master, False)
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "fakescope_cli", "scan", "-j", "2", "--no-cache", "-f", "jsonl",
                             "-o", str(out), str(many)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=slave, cwd=REPO)
    os.close(slave)
    seen: set[str] = set()
    workers = 0
    terminal = b""
    deadline = time.time() + 120
    while proc.poll() is None and time.time() < deadline:
        kids = _descendants(proc.pid)
        workers = max(workers, len(kids))
        for k in kids:
            try:
                seen.add(Path(f"/proc/{k}/cmdline").read_bytes().replace(b"\0", b" ").decode())
            except OSError:
                pass
        try:
            terminal += os.read(master, 65536)  # drain the terminal, or the bar blocks on a full pty
        except (BlockingIOError, OSError):
            pass
        time.sleep(0.005)
    proc.kill()
    proc.wait()
    os.close(master)
    assert proc.returncode == 0
    assert len(out.read_text().splitlines()) == 60
    assert b"scanning" in terminal  # the bar was really on
    assert workers >= 2 and seen, "no worker seen"
    assert not any("forkserver" in cmd for cmd in seen), seen


IDLE_DEATH_SCRIPT = """
    import json, os, signal, sys
    from fakescope_cli.analyze import ScanConfig
    from fakescope_cli.inputs import InputExpander
    from fakescope_cli.workers import WorkerPool

    cands = list(InputExpander().expand([sys.argv[1]]))
    with WorkerPool(ScanConfig(), 1, 60) as pool:
        dead = pool.workers[0].proc
        os.kill(dead.pid, signal.SIGKILL)  # as the kernel's OOM killer would, between two files
        dead.join()
        records = list(pool.map(cands))
        replaced = pool.workers[0].proc.pid != dead.pid
    print(json.dumps({"n": len(records), "errors": [r["errors"] for r in records], "replaced": replaced}))
"""


@pytest.mark.slow
def test_a_worker_that_died_between_files_costs_no_file(photos):
    """Sending work to a dead worker fails (EPIPE): the file goes to its replacement, and no file is blamed."""
    out = run_python(IDLE_DEATH_SCRIPT, str(photos))
    assert out == {"n": 6, "errors": [[]] * 6, "replaced": True}
