"""gates.py: which records trip --fail-on / --fail-above, and the one line that says why."""

from __future__ import annotations

import pytest

from fakescope_cli.errors import UsageError
from fakescope_cli.gates import Gate, GateOutcome, parse_fail_on


def _record(path: str, verdict: str, p: float | None, errors: bool = False) -> dict:
    return {"path": path, "verdict": verdict, "p_fake": p,
            "errors": [{"code": "truncated", "message": "x"}] if errors else []}


def test_parse_fail_on_takes_repeats_and_commas_and_refuses_typos() -> None:
    assert parse_fail_on(["ai-generated,AI-Edited", " likely-ai "]) == {"ai-generated", "ai-edited", "likely-ai"}
    assert parse_fail_on(None) == frozenset()
    with pytest.raises(UsageError, match="'ai-made' is not a verdict"):
        parse_fail_on(["ai-generated,ai-made"])


def test_the_verdict_gate_ignores_pixel_scores_and_the_score_gate_is_strict() -> None:
    on_verdicts = Gate(fail_on=frozenset({"ai-generated", "ai-edited"}))
    assert not on_verdicts.trips_on(_record("a", "likely-ai", 0.95))
    assert on_verdicts.trips_on(_record("b", "ai-edited", 0.99))
    above = Gate(fail_above=0.95)
    assert not above.trips_on(_record("a", "likely-ai", 0.95))  # p_fake *above* P
    assert above.trips_on(_record("b", "ai-generated", 0.99))
    assert not above.trips_on(_record("c", "no-verdict", None))
    assert Gate(None, frozenset()).rule() == "" and not Gate().active
    assert Gate(0.9, frozenset({"ai-edited", "ai-generated"})).rule() == "--fail-on ai-generated,ai-edited --fail-above 0.9"


def test_the_message_names_the_rule_the_count_and_the_first_three_paths() -> None:
    outcome = GateOutcome(Gate(fail_on=frozenset({"ai-generated"})))
    assert outcome.message() is None
    for i in range(5):
        outcome.add(_record(f"f{i}.png", "ai-generated", 0.99))
    outcome.add(_record("bad.jpg", "error", None, errors=True))
    assert outcome.message() == ("gate --fail-on ai-generated tripped by 5 files: f0.png, f1.png, f2.png, … "
                                 "(2 more) (and 1 file not analysed)")
    header = outcome.to_header()
    assert header["tripped"] is True and header["tripped_files"] == 5 and header["unanalysed_files"] == 1
    assert header["tripped_examples"] == [f"f{i}.png" for i in range(5)]
    incomplete = GateOutcome(Gate())
    incomplete.add(_record("bad.jpg", "error", None, errors=True))
    assert incomplete.message() == "1 file could not be fully analysed: bad.jpg"
    assert incomplete.to_header()["rule"] is None and incomplete.to_header()["tripped"] is False
