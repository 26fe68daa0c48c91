"""The wheel carries every sub-package, the schema, the shipped weights and the man page."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import FIXTURES, REPO


@pytest.mark.slow
def test_wheel_contents(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(REPO)],
        check=True, capture_output=True,
    )
    wheel = next(tmp_path.glob("fakescope-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for init in REPO.glob("fakescope_cli/**/__init__.py"):
        assert str(init.relative_to(REPO)) in names, f"{init} is not packaged: list it in pyproject.toml"
    assert "fakescope_train/__init__.py" in names
    assert "fakescope_cli/schema/record.schema.json" in names
    for weight in (REPO / "fakescope_cli" / "weights").glob("*"):
        if weight.is_file():
            assert f"fakescope_cli/weights/{weight.name}" in names
    assert any(n.endswith(".data/data/share/man/man1/fakescope.1") for n in names)
    for asset in (REPO / "fakescope_cli" / "render" / "assets").glob("*"):  # the HTML report's script and style
        assert f"fakescope_cli/render/assets/{asset.name}" in names


_IMPORTS_OF_CORE_COMMANDS = """
import json, sys
from fakescope_cli.cli import main
for argv in json.loads(sys.argv[1]):
    sys.argv = ["fakescope", *argv]
    try:
        main()
    except SystemExit:
        pass
print("\\nMODULES " + json.dumps(sorted({m.split(".")[0] for m in list(sys.modules)})))
"""


def _core_closure() -> set[str]:
    """Distributions that `pip install fakescope` (no extras) brings, resolved from installed metadata."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    todo = ["fakescope"]
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # an optional marker-free dependency absent here cannot have been imported either
        for text in requires:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


@pytest.mark.slow
def test_core_commands_import_only_what_the_core_install_brings(tmp_path):
    """The README's first command installs the core alone. A module that only an extra (or a test
    dependency) happens to bring works here and fails there: typer 0.28 vendors click, so an
    `import click` once passed every test and broke `fakescope scan` on a fresh core install."""
    from importlib import metadata

    from packaging.utils import canonicalize_name

    labelled = tmp_path / "labelled"
    real = FIXTURES / "exif-samples" / "jpg" / "Canon_40D.jpg"
    fake = sorted((FIXTURES / "provenance" / "comfyui").glob("*.png"))[0]
    for label, image in (("real", real), ("fake", fake)):
        (labelled / label).mkdir(parents=True)
        (labelled / label / image.name).write_bytes(image.read_bytes())
    commands = [
        ["--help"],
        ["scan", "-j", "1", "--no-cache", "-q", "-f", "jsonl", "-o", str(tmp_path / "a.jsonl"), str(labelled)],
        ["merge", str(tmp_path / "a.jsonl"), "-f", "csv", "-o", str(tmp_path / "a.csv")],
        ["eval", str(labelled), "-j", "1", "--json", str(tmp_path / "eval.json")],
        ["scan", "-j", "1", "--no-cache", "-q", str(FIXTURES / "provenance"), str(FIXTURES / "exif-samples")],
        ["scan", "-j", "1", "--no-cache", "-q", "-f", "html", "-o", str(tmp_path / "r.html"), str(FIXTURES / "provenance")],
        ["scan", "-j", "1", "--no-cache", "-q", "-f", "sarif", str(FIXTURES / "provenance")],
        ["models", "list"],
    ]
    proc = subprocess.run([sys.executable, "-c", _IMPORTS_OF_CORE_COMMANDS, json.dumps(commands)],
                          capture_output=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    modules = json.loads(proc.stdout.decode().rsplit("\nMODULES ", 1)[1])
    # What the bare interpreter has loaded before fakescope (site hooks such as setuptools' .pth).
    at_start = set(json.loads(subprocess.run(
        [sys.executable, "-c", "import json, sys; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"],
        capture_output=True, check=True).stdout))
    owners = metadata.packages_distributions()
    closure = _core_closure()
    outside = {}
    for module in modules:
        if module in sys.stdlib_module_names or module in at_start or module == "fakescope_cli" or module not in owners:
            continue
        dists = {canonicalize_name(d) for d in owners[module]}
        if not dists & closure:
            outside[module] = sorted(dists)
    assert "onnxruntime" in modules and "typer" in modules  # the commands really ran
    assert (tmp_path / "a.csv").is_file() and json.loads((tmp_path / "eval.json").read_text())["n"] == 2
    assert not outside, f"imported by core commands but not brought by the core install: {outside}"
