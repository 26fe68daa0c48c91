"""Inputs the fuzzers once crashed on (minimised), replayed through the same harness code.

tests/fuzz_regressions/<harness>/<name> holds the raw fuzz input for tests/fuzz/fuzz_<harness>.py.
Each must now pass the harness's checks (no exception other than InputError, a well-formed item
list). No atheris needed. The fuzzers' per-input time limit (-timeout 10) is theirs to enforce: none of
these inputs was a slow-input finding, and a wall-clock bound here fails on a loaded machine.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

HERE = Path(__file__).resolve().parent
FUZZ = HERE / "fuzz"
REGRESSIONS = HERE / "fuzz_regressions"

CASES = sorted(p for p in REGRESSIONS.glob("*/*") if p.is_file() and not p.name.startswith("."))


def _harness(name: str) -> ModuleType:
    module_name = f"fuzz_{name}"
    if module_name not in sys.modules:
        if str(FUZZ) not in sys.path:
            sys.path.insert(0, str(FUZZ))
        spec = importlib.util.spec_from_file_location(module_name, FUZZ / f"{module_name}.py")
        assert spec and spec.loader, f"no harness for {name}"
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        module.load()
    return sys.modules[module_name]


def test_every_regression_has_a_harness() -> None:
    assert CASES, "tests/fuzz_regressions is empty"
    for case in CASES:
        assert (FUZZ / f"fuzz_{case.parent.name}.py").is_file(), case
        assert case.stat().st_size < 50_000, f"{case} is too large for a regression fixture"


@pytest.mark.parametrize("case", CASES, ids=[f"{p.parent.name}/{p.name}" for p in CASES])
def test_fuzz_regression(case: Path) -> None:
    harness = _harness(case.parent.name)
    data = case.read_bytes()
    harness.one_input(data)  # raises on the finding this input once produced
