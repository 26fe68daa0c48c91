"""The detector interface as a plugin author meets it: docs/plugins.md's minimal detector, installed
exactly as written (its entry point in a dist-info on the path), scans; a plugin that declares "run in
process" and "can answer questions" works through scan and ask with no engine change."""

from __future__ import annotations

import json
import os
import re
import sys

import pytest
from PIL import Image

from tests.conftest import REPO, jsonl_records, run_cli

if sys.version_info >= (3, 11):
    import tomllib
else:  # the train extra brings tomli on 3.10
    tomllib = pytest.importorskip("tomli")

DOC = REPO / "docs" / "plugins.md"
TALKING = "tests.plugins.talking_detector:TalkingDetector"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def _install_doc_plugin(site) -> str:
    """The doc's module and entry point as an installed distribution under `site`; returns the name."""
    (module_code,) = _blocks("python")
    (toml_text,) = _blocks("toml")
    group = tomllib.loads(toml_text)["project"]["entry-points"]["fakescope.detectors"]
    (name, target), = group.items()
    module = target.partition(":")[0]
    (site / f"{module}.py").write_text(module_code, encoding="utf-8")
    info = site / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[fakescope.detectors]\n{name} = {target}\n", encoding="utf-8")
    return name


@pytest.mark.slow
def test_the_documented_minimal_detector_installs_and_scans(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    name = _install_doc_plugin(site)
    grey, white = tmp_path / "grey.png", tmp_path / "white.png"
    Image.new("RGB", (16, 16), (128, 128, 128)).save(grey)
    Image.new("RGB", (16, 16), (255, 255, 255)).save(white)
    env = {"PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}

    listed = run_cli("models", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert re.search(rf"^\s*{name}\b.*available \(plugin\)", listed.stdout.decode(), flags=re.M)

    proc = run_cli("scan", "-b", name, "--format", "jsonl", str(grey), str(white), env=env)
    assert proc.returncode in (0, 1), proc.stderr.decode()
    by_name = {os.path.basename(r["path"]): r for r in jsonl_records(proc.stdout)}
    assert by_name["grey.png"]["detector"]["id"] == name
    assert by_name["grey.png"]["p_fake"] == pytest.approx(abs(128 / 255 - 0.5) * 2, abs=1e-6)
    assert by_name["white.png"]["detector"]["p_fake"] == pytest.approx(1.0)
    assert by_name["white.png"]["p_fake"] == pytest.approx(0.95)  # a pixel score alone is capped (fusion)
    assert by_name["white.png"]["verdict"] == "likely-ai"


@pytest.mark.slow
def test_a_plugin_declaring_in_process_and_questions_needs_no_engine_change(tmp_path):
    img = tmp_path / "a.png"
    Image.new("RGB", (16, 16), (51, 51, 51)).save(img)
    others = [tmp_path / f"b{i}.png" for i in range(3)]
    for o in others:
        Image.new("RGB", (16, 16), (200, 200, 200)).save(o)

    # --jobs 4 would start worker processes for a detector that did not declare runs_in_process.
    proc = run_cli("scan", "-b", TALKING, "--jobs", "4", "--format", "jsonl", str(tmp_path))
    assert proc.returncode in (0, 1), proc.stderr.decode()
    records = jsonl_records(proc.stdout)
    assert len(records) == 4
    pids = {r["detector"]["raw"]["pid"] for r in records}
    parents = {r["detector"]["raw"]["parent_pid"] for r in records}
    assert len(pids) == 1 and parents == {os.getpid()}  # scored in the CLI process this test started

    asked = run_cli("ask", "-b", TALKING, str(img), "how bright?")
    assert asked.returncode == 0, asked.stderr.decode()
    assert asked.stdout.decode().split() == "asked 'how bright?': mean brightness 0.200".split()
    advised = run_cli("ask", "-b", TALKING, "--advise", "--json", str(img))
    assert advised.returncode == 0, advised.stderr.decode()
    answer = json.loads(advised.stdout)
    assert answer["answer"] == "asked 'advise': mean brightness 0.200" and answer["detector"]["id"] == "test-talking"


def test_ask_refuses_a_backend_that_declares_no_questions_before_reading_the_image(tmp_path):
    from fakescope_cli.ask import ask_image
    from fakescope_cli.errors import UsageError

    for backend in ("tests.plugins.brightness_detector:BrightnessDetector", "builtin", "none"):
        with pytest.raises(UsageError, match="cannot answer questions"):  # not the missing file's error
            ask_image(str(tmp_path / "absent.png"), backend, {}, question="q", advise=False, stream=None)


def test_builtin_backends_register_like_plugins_and_declare_what_they_can_do():
    from importlib.metadata import entry_points

    from fakescope_cli.detectors import backend_names, detector_class

    own = {ep.name for ep in entry_points(group="fakescope.detectors") if ep.dist and ep.dist.metadata["Name"] == "fakescope"}
    assert own == {"builtin", "cycle", "fitted", "classifier", "hf", "gguf", "server"} and own < set(backend_names())
    capabilities = {name: (detector_class(name).runs_in_process, detector_class(name).answers_questions)
                    for name in sorted(own)}
    assert capabilities == {"builtin": (False, False), "classifier": (True, False), "cycle": (False, False),
                            "fitted": (False, False), "gguf": (True, True), "hf": (True, True), "server": (True, True)}
    assert detector_class("server").parallel_requests > 0 and detector_class("builtin").parallel_requests == 0


def test_a_class_that_is_not_a_detector_is_refused_by_name():
    from fakescope_cli.detectors import load_detector
    from fakescope_cli.errors import UsageError

    with pytest.raises(UsageError, match="is not a detector .a fakescope_cli.detectors.base.Detector subclass"):
        load_detector("json:JSONDecoder")


def test_describe_writes_the_same_custody_fields_as_before():
    """Records and run headers carry describe()'s dict: the typed DetectorInfo keeps its keys and order."""
    from fakescope_cli.detectors import describe, load_detector

    info = describe(load_detector("builtin"))
    assert list(info)[:6] == ["id", "version", "weights_sha256", "threshold_low", "threshold_high", "calibration"]
    assert info["id"] == "builtin" and 0 <= info["threshold_low"] < info["threshold_high"] <= 1
    assert len(info["weights_sha256"]) == 64
