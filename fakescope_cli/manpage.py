"""fakescope(1), generated from the Typer app: every command, sub-command and option with its help.

`python man/generate.py` writes man/fakescope.1; tests/test_manpage.py fails when the committed page
differs from what this module renders now. The output is deterministic (no date: the package
version stands in for it) and uses only the classic `man` macros (TH SH SS TP PP B I BR RS RE EX EE),
which groff, mandoc and busybox all render.

Roff escaping (groff_man(7), groff(7)): a backslash is written `\\e`; every hyphen-minus becomes `\\-`
so that options and paths survive copy and paste; a line starting with `.` or `'` would be a request,
so it gets a leading `\\&`; non-ASCII characters become `\\[uXXXX]` (groff reads Latin-1 input).
"""

from __future__ import annotations

import re
from typing import Any

from fakescope_cli import __version__
from fakescope_cli.errors import ERROR_CODES
from fakescope_cli.record import VERDICTS
from fakescope_cli.render.html import VERDICT_WORDS

TITLE = "FAKESCOPE"

DESCRIPTION = (
    "fakescope reads what a file says about its own origin (C2PA Content Credentials, XMP and IPTC "
    "digital source type, generator metadata from AUTOMATIC1111, ComfyUI, InvokeAI, NovelAI and "
    "Fooocus, Stable Diffusion invisible watermarks, camera EXIF), runs a pixel detector, and fuses "
    "both into p_fake, the probability that the image is AI-generated, with a verdict and reasons in "
    "plain words. Strong provenance decides (p_fake 0.99 or more); the absence of provenance proves "
    "nothing; camera EXIF is reported but never moves the score.\n\n"
    "A pixel score that no provenance backs is a hint: p_fake is capped at 0.95, whatever the backend "
    "(the detector's own value stays in detector.p_fake), so a gate at 0.99 or on provenance verdicts "
    "is never tripped by pixels alone. Where the detector's band is closed (it is not reliable enough "
    "to decide alone, as with the shipped detectors) the verdict is uncertain and the table, HTML "
    "report and CSV show the score as \"hint 0.85\": a rank from 0 (looks real) to 1 (looks "
    "generated), never a percentage.\n\n"
    "Machine output goes to standard output; progress, notes and errors go to standard error. "
    "Evidence files are opened read-only and never changed."
)

ENVIRONMENT: tuple[tuple[str, str], ...] = (
    ("NO_COLOR", "When set (to anything), the table output has no colour, even on a terminal."),
    ("XDG_CACHE_HOME", "Base of the default cache folder (see FILES); ~/.cache when unset."),
    ("FAKESCOPE_CACHE_DIR", "Where the digests of large weights files are remembered, instead of the "
     "user cache folder."),
    ("ORT_DISABLE_TELEMETRY, HF_HUB_DISABLE_TELEMETRY, DO_NOT_TRACK", "Set to 1 by fakescope when unset, "
     "before any library loads, so that no library writes telemetry files (onnxruntime would write a "
     "device id and an events database under ~/.cache/Microsoft/DeveloperTools/). Set one to 0 "
     "yourself to let that library's telemetry run."),
)

FILES: tuple[tuple[str, str], ...] = (
    ("$XDG_CACHE_HOME/fakescope/", "The result cache (default ~/.cache/fakescope/): one entry per file "
     "identity and detector configuration, so a repeated scan of unchanged files is served without "
     "analysing them again. Change it with --cache-dir, bypass it with --no-cache. Deleting the "
     "folder is always safe. fakescope writes nothing else outside its outputs."),
)

EXAMPLES: tuple[tuple[str, str], ...] = (
    ("Scan a folder (recursively) and print a table:", "fakescope scan ./evidence"),
    ("One JSON record per line, flushed per file:", "fakescope scan -f jsonl ./evidence > out.jsonl"),
    ("A self-contained HTML report with thumbnails, filters and a chain-of-custody table:",
     "fakescope scan -f html -o report.html ./evidence"),
    ("SARIF for GitHub code scanning, from the repository root:", "fakescope scan -f sarif -o fakescope.sarif ."),
    ("Metadata only (no pixel decoding, no detector), paths from find:",
     "find . -name '*.jpg' -print0 | fakescope scan --no-pixels -0 -f jsonl -"),
    ("Fail a CI job when provenance proves an image AI-generated or AI-edited (a pixel hint alone "
     "cannot trip it; the reason is printed on standard error and recorded in the run header):",
     "fakescope scan --fail-on ai-generated,ai-edited -q assets/"),
    ("List only what needs a look (flagged verdicts, errors, warnings):", "fakescope scan --only attention ./evidence"),
    ("Scan in shards on several machines, then merge into one report:",
     "fakescope scan --shard 1/2 -f jsonl -o a.jsonl photos/\n"
     "fakescope scan --shard 2/2 -f jsonl -o b.jsonl photos/\n"
     "fakescope merge a.jsonl b.jsonl -f html -o report.html"),
    ("Measure the detector on a labelled folder and write a threshold at a 1% false-positive rate "
     "(refused, exit 2, when the scores do not separate real from fake; --force writes it anyway):",
     "fakescope eval labelled/ --calibrate threshold.json --target-fpr 0.01"),
    ("Install shell completion for the current shell, or print the script for one:",
     "fakescope --install-completion\nfakescope --show-completion bash"),
)

SEE_ALSO = "The README of the fakescope package; the record JSON Schema in fakescope_cli/schema/record.schema.json."


# --- roff text ---------------------------------------------------------------------------------------

def roff_text(text: str) -> str:
    """Plain text as roff body text (no macro, no font change)."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\e")
        elif ch == "-":
            out.append("\\-")
        elif ord(ch) > 126:
            out.append(f"\\[u{ord(ch):04X}]")
        elif ord(ch) < 32 and ch not in "\n":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def _safe_line(line: str) -> str:
    """A body line that cannot be mistaken for a request."""
    return "\\&" + line if line.startswith((".", "'")) else line


def _paragraphs(text: str) -> list[str]:
    """Help text as roff lines: paragraphs split on blank lines, lines inside joined."""
    lines: list[str] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        body = " ".join(part.strip() for part in block.splitlines() if part.strip())
        if not body:
            continue
        if lines:
            lines.append(".PP")
        lines.append(_safe_line(roff_text(body)))
    return lines


_TOKEN = re.compile(r"(\s*,\s*|\s+/\s+|\s+)")


def _signature(opts_text: str) -> str:
    """'-f, --format <a|b>' as roff: option names bold, metavars italic, separators roman."""
    parts = []
    for token in _TOKEN.split(opts_text):
        if not token:
            continue
        if _TOKEN.fullmatch(token):
            parts.append(roff_text(token))
        elif token.startswith("-"):
            parts.append(f"\\fB{roff_text(token)}\\fR")
        else:
            parts.append(f"\\fI{roff_text(token)}\\fR")
    return _safe_line("".join(parts))


# --- walking the click command ----------------------------------------------------------------------

def _argument_name(param: Any) -> str:
    name = str(param.metavar or param.name.upper())
    if getattr(param, "nargs", 1) == -1:
        name += "..."
    return name if param.required else f"[{name}]"


def _params(command: Any, ctx: Any) -> list[tuple[str, str, bool]]:
    """(signature text, help text, is_argument) for every visible parameter, help option included."""
    out = []
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        is_argument = param.param_type_name == "argument"
        record = param.get_help_record(ctx)
        if is_argument:
            help_text = record[1] if record else (getattr(param, "help", None) or "")
            out.append((_argument_name(param), help_text, True))
        elif record is not None:
            out.append((record[0], record[1], False))
    return out


def _usage(command: Any, ctx: Any) -> str:
    pieces = []
    for param in command.get_params(ctx):
        if param.param_type_name == "argument" and not getattr(param, "hidden", False):
            pieces.append(_argument_name(param))
    options = "[\\fIOPTIONS\\fR]"
    if hasattr(command, "commands"):
        return f"{options} \\fICOMMAND\\fR [\\fIARGS\\fR]..."
    return " ".join([options, *(f"\\fI{roff_text(p)}\\fR" for p in pieces)])


def _walk(command: Any, ctx: Any, path: list[str]) -> list[tuple[list[str], Any, Any]]:
    """(name path, command, context) for every visible sub-command, depth first, in listed order."""
    found = []
    for name in command.list_commands(ctx):
        sub = command.get_command(ctx, name)
        if sub is None or getattr(sub, "hidden", False):
            continue
        sub_ctx = sub.context_class(sub, info_name=name, parent=ctx, **(sub.context_settings or {}))
        found.append(([*path, name], sub, sub_ctx))
        if hasattr(sub, "commands"):
            found.extend(_walk(sub, sub_ctx, [*path, name]))
    return found


def exit_codes(text: str) -> list[tuple[str, str]]:
    """Parse the CLI's 'Exit codes: 0 done, ...; 1 a ...; ...' sentence into (code, meaning)."""
    body = text.split(":", 1)[1].strip().rstrip(".")
    out = []
    for part in body.split("; "):
        code, _, meaning = part.strip().partition(" ")
        if code.isdigit():
            out.append((code, meaning.strip()))
    return out


def render(app: Any | None = None) -> str:
    """The man page for `app` (default: fakescope's own), as roff source."""
    import typer.main

    from fakescope_cli.cli import EXIT_CODES_HELP

    if app is None:
        from fakescope_cli.cli import app as fakescope_app

        app = fakescope_app
    root = typer.main.get_command(app)
    ctx = root.context_class(root, info_name="fakescope", **(root.context_settings or {}))
    commands = _walk(root, ctx, ["fakescope"])

    lines = [
        '.\\" Generated by man/generate.py from the fakescope command line; do not edit.',
        f'.TH {TITLE} 1 "" "fakescope {roff_text(__version__)}" "User Commands"',
        ".nh",  # no hyphenation: option names and paths must read as typed
        ".ad l",
        ".SH NAME",
        "fakescope \\- " + roff_text(_first_sentence(root.help or "")),
        ".SH SYNOPSIS",
        f".B fakescope\n{_usage(root, ctx)}",
    ]
    for names, command, sub_ctx in commands:
        lines += [".br", f".B {' '.join(names)}", _usage(command, sub_ctx)]

    # The help's first paragraph is the NAME line; its exit-code sentence is EXIT STATUS.
    rest = (root.help or "").replace(EXIT_CODES_HELP, "").strip().split("\n\n", 1)[1:]
    lines += [".SH DESCRIPTION", *_paragraphs(DESCRIPTION)]
    if rest and rest[0].strip():
        lines += [".PP", *_paragraphs(rest[0])]
    lines += [".PP", "Each file gets one verdict:"]
    for verdict in VERDICTS:
        lines += [".TP", f".B {roff_text(verdict)}", _safe_line(roff_text(VERDICT_WORDS[verdict] + "."))]

    lines.append(".SH OPTIONS")
    lines += _param_lines(_params(root, ctx))

    lines.append(".SH COMMANDS")
    for names, command, sub_ctx in commands:
        lines.append(f'.SS "{" ".join(names)}"')
        lines += _paragraphs(command.help or "")
        params = _params(command, sub_ctx)
        lines += _param_lines(params)
        epilog = (command.epilog or "").strip()
        if epilog and epilog != EXIT_CODES_HELP:
            lines += [".PP", *_paragraphs(epilog)]

    lines.append(".SH EXIT STATUS")
    for code, meaning in exit_codes(EXIT_CODES_HELP):
        lines += [".TP", f".B {code}", _safe_line(roff_text(meaning))]
    lines += [".SH DIAGNOSTICS",
              "A file that cannot be analysed gets a record with verdict \\fBerror\\fR and "
              "\\fBerrors[].code\\fR set to one of these stable codes:"]
    for code, meaning in ERROR_CODES.items():
        lines += [".TP", f".B {roff_text(code)}", _safe_line(roff_text(meaning))]

    lines.append(".SH ENVIRONMENT")
    for name, meaning in ENVIRONMENT:
        lines += [".TP", f".B {roff_text(name)}", _safe_line(roff_text(meaning))]
    lines.append(".SH FILES")
    for name, meaning in FILES:
        lines += [".TP", f".I {roff_text(name)}", _safe_line(roff_text(meaning))]
    lines.append(".SH EXAMPLES")
    for what, commands_text in EXAMPLES:
        lines += [".PP", _safe_line(roff_text(what)), ".RS 4", ".EX"]
        lines += [_safe_line(roff_text(line)) for line in commands_text.splitlines()]
        lines += [".EE", ".RE"]
    lines += [".SH SEE ALSO", _safe_line(roff_text(SEE_ALSO))]
    return "\n".join(lines) + "\n"


def _param_lines(params: list[tuple[str, str, bool]]) -> list[str]:
    lines = []
    for signature, help_text, is_argument in params:
        head = f"\\fI{roff_text(signature)}\\fR" if is_argument else _signature(signature)
        lines += [".TP", head]
        lines += _paragraphs(help_text) or ["(no description)"]
    return lines


def _first_sentence(text: str) -> str:
    first = text.strip().split("\n\n", 1)[0].strip()
    first = first[0].lower() + first[1:] if first else first
    return first.rstrip(".")
