"""CI gates: the rules that turn a finished scan into "findings" (exit 1), and the one line that
says why.

Two rules, either or both:
- `--fail-on VERDICT[,VERDICT…]` trips on a verdict (grype's `--fail-on` idea). With
  `ai-generated,ai-edited` only provenance can trip it: a pixel score alone never gives those
  verdicts, so a detector's false alarm on a real photo cannot fail a build.
- `--fail-above P` trips on p_fake > P. A pixel score with no provenance behind it is capped below
  provenance's band (fusion.PIXEL_P_FAKE_CAP), so P at or above that cap trips on provenance only.

Files that could not be analysed are not findings; they make the run incomplete (exit 3, the gate
winning when both apply). Either outcome is said once on stderr and recorded in the run header
under "gate" (json, the jsonl trailer, sarif), so a failed CI job says why without a re-run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fakescope_cli.errors import UsageError
from fakescope_cli.record import VERDICTS

EXAMPLES = 3  # paths named in the stderr line; the header keeps a few more
_HEADER_EXAMPLES = 20


def parse_fail_on(values: Iterable[str] | None) -> frozenset[str]:
    """`--fail-on` values (repeated or comma-separated) as a set of verdicts; UsageError for a word
    that is not a verdict (a typo must not make a gate that never trips)."""
    verdicts: set[str] = set()
    for value in values or ():
        for word in value.split(","):
            word = word.strip().lower()
            if not word:
                continue
            if word not in VERDICTS:
                raise UsageError(f"--fail-on: {word!r} is not a verdict; choose from {', '.join(VERDICTS)}")
            verdicts.add(word)
    return frozenset(verdicts)


@dataclass(frozen=True)
class Gate:
    fail_above: float | None = None
    fail_on: frozenset[str] = frozenset()

    @property
    def active(self) -> bool:
        return self.fail_above is not None or bool(self.fail_on)

    def rule(self) -> str:
        """The gate as the user typed it, e.g. `--fail-on ai-generated,ai-edited`."""
        parts = []
        if self.fail_on:
            parts.append("--fail-on " + ",".join(v for v in VERDICTS if v in self.fail_on))
        if self.fail_above is not None:
            parts.append(f"--fail-above {self.fail_above:g}")
        return " ".join(parts)

    def trips_on(self, record: dict[str, Any]) -> bool:
        if record.get("verdict") in self.fail_on:
            return True
        p = record.get("p_fake")
        return self.fail_above is not None and isinstance(p, (int, float)) and p > self.fail_above


@dataclass
class GateOutcome:
    """What the gate saw over a run, filled record by record."""

    gate: Gate
    tripped: list[str] = field(default_factory=list)  # paths of the records that tripped it
    unanalysed: list[str] = field(default_factory=list)  # paths of records with errors

    def add(self, record: dict[str, Any]) -> None:
        path = str(record.get("path", ""))
        if self.gate.trips_on(record):
            self.tripped.append(path)
        if record.get("errors"):
            self.unanalysed.append(path)

    def message(self) -> str | None:
        """The one stderr line (without the `fakescope: ` prefix), or None when all is well."""
        if self.tripped:
            return (f"gate {self.gate.rule()} tripped by {_files(self.tripped)}: {_first(self.tripped)}"
                    + (f" (and {_files(self.unanalysed)} not analysed)" if self.unanalysed else ""))
        if self.unanalysed:
            return f"{_files(self.unanalysed)} could not be fully analysed: {_first(self.unanalysed)}"
        return None

    def to_header(self) -> dict[str, Any]:
        """The run header's "gate" block."""
        return {
            "rule": self.gate.rule() or None,
            "fail_on": [v for v in VERDICTS if v in self.gate.fail_on],
            "fail_above": self.gate.fail_above,
            "tripped": bool(self.tripped),
            "tripped_files": len(self.tripped),
            "tripped_examples": self.tripped[:_HEADER_EXAMPLES],
            "unanalysed_files": len(self.unanalysed),
            "unanalysed_examples": self.unanalysed[:_HEADER_EXAMPLES],
            "message": self.message(),
        }


def say_gate_outcome(outcome: GateOutcome) -> None:
    """Why the exit code is 1 or 3, in one line on stderr; printed even with --quiet, as it is the
    reason for the exit code, not a note. File names are shown with control characters escaped."""
    import sys

    from fakescope_cli.render._common import display_text

    message = outcome.message()
    if message is not None:
        print(f"fakescope: {display_text(message)}", file=sys.stderr)


def _files(paths: list[str]) -> str:
    return f"{len(paths)} file{'s' if len(paths) != 1 else ''}"


def _first(paths: list[str]) -> str:
    shown = ", ".join(paths[:EXAMPLES])
    return shown + (f", … ({len(paths) - EXAMPLES} more)" if len(paths) > EXAMPLES else "")
