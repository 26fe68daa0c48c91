"""`fakescope scan`'s arguments parsed without typer, for the fast path in __main__.

Importing typer and building the command costs ~13 ms of a one-file scan (~80 ms in all, the time
exiftool takes to read the same file). parse() reads the arguments as typer would and returns the
keywords typer would give cli.scan's body (scan_command), or None whenever it is not sure: --help,
an unknown option, combined or attached short options (`-qr`, `-fjson`), a value that starts with
'-', `=value` given to a flag, a number that is not plainly one or is out of range, a choice not in
the list, a path option that typer would refuse, no PATH, a shell-completion request. Then typer
parses the same arguments and gives its own answer or error message: the fast path never differs,
it only declines.

What the options are (names, flags, values, types, ranges, choices, defaults) is not written here a
second time: scan_argv_spec.py is generated from typer's own command by spec_from_typer(), and
tests/test_scan_argv.py fails when the two part. Regenerate with `python -m fakescope_cli.scan_argv`.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from fakescope_cli.scan_argv_spec import ARGUMENT, DEFAULTS, FLAGS, VALUE_OPTIONS

_PLAIN_INT = re.compile(r"[0-9]+")
_PLAIN_FLOAT = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")


def parse(argv: Sequence[str], environ: Mapping[str, str] = os.environ) -> dict[str, Any] | None:
    """The keywords of scan_command for `fakescope scan ARGV...` (enums as their values), or None
    where typer should parse them."""
    if _completion_requested(environ):
        return None
    given: dict[str, Any] = {}
    paths: list[str] = []
    tokens: Iterator[str] = iter(argv)
    for token in tokens:
        if token == "--":  # click: everything after it is an argument
            paths.extend(tokens)
            break
        if token == "-" or not token.startswith("-"):  # click takes arguments between options too
            paths.append(token)
            continue
        opt, equals, attached = token.partition("=") if token.startswith("--") else (token, "", "")
        if opt in FLAGS:
            if equals:
                return None  # click: "option does not take a value"
            name, value = FLAGS[opt]
            given[name] = value
            continue
        option = VALUE_OPTIONS.get(opt)
        if option is None:
            return None
        raw = attached if equals else next(tokens, None)
        value = None if raw is None else _convert(option, raw)
        if value is None:
            return None
        if option["multiple"]:
            given.setdefault(option["name"], []).append(value)
        else:
            given[option["name"]] = value  # click: the last one given wins
    if not paths:
        return None
    return {**DEFAULTS, **given, ARGUMENT: paths}


def _completion_requested(environ: Mapping[str, str]) -> bool:
    """Typer answers shell completion when `_<PROG>_COMPLETE` is set (PROG from argv[0]): any such
    variable declines, whatever the program's name."""
    return any(name.startswith("_") and name.endswith("_COMPLETE") and value for name, value in environ.items())


def _convert(option: Mapping[str, Any], raw: str) -> Any:
    """The value typer would pass for RAW, or None where it is not plainly valid."""
    if not raw or raw.startswith("-"):
        return None
    kind = option["type"]
    if kind == "str":
        return raw
    if kind == "choice":
        return raw if raw in option["choices"] else None
    if kind == "path":
        from pathlib import Path  # here, for the options that take one: pathlib is ~2.5 ms of a one-file scan

        return Path(raw) if _path_accepted(option, raw) else None
    pattern, number = (_PLAIN_INT, int) if kind == "int" else (_PLAIN_FLOAT, float)
    if not pattern.fullmatch(raw):
        return None
    value = number(raw)
    low, high = option["min"], option["max"]
    if low is not None and (value <= low if option["min_open"] else value < low):
        return None
    if high is not None and (value >= high if option["max_open"] else value > high):
        return None
    return value


def _path_accepted(option: Mapping[str, Any], raw: str) -> bool:
    """Would typer's path type take RAW? (It checks a path that exists; one that does not is the
    command's to judge.)"""
    try:
        mode = os.stat(raw).st_mode
    except OSError:
        return True
    return not ((not option["file_okay"] and stat.S_ISREG(mode))
                or (not option["dir_okay"] and stat.S_ISDIR(mode))
                or (option["readable"] and not os.access(raw, os.R_OK))
                or (option["writable"] and not os.access(raw, os.W_OK)))


# Development time only: what follows reads typer's command and writes scan_argv_spec.py.

SPEC_MODULE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scan_argv_spec.py")
_PROBE_PATH = "probe-path"


def spec_from_typer() -> dict[str, Any]:
    """scan_argv_spec's tables, read from the click command typer builds for cli.scan. Flag values
    and defaults are not read from click's attributes but observed: the command is run in process
    (its body replaced) and what it passes is recorded. Raises for anything parse() cannot follow."""
    from typer._click import types  # typer 0.28 vendors click
    from typer._types import TyperChoice
    from typer.models import TyperPath

    from fakescope_cli import cli

    group = cli._command_group()
    unknown_settings = set(group.context_settings) - {"help_option_names"}
    command = group.commands["scan"]
    _require(not unknown_settings and not command.context_settings, "context settings")
    _require(command.allow_interspersed_args and not command.ignore_unknown_options
             and not command.allow_extra_args, "the command's parsing settings")
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    _require(len(arguments) == 1 and arguments[0].nargs == -1 and arguments[0].required
             and isinstance(arguments[0].type, types.StringParamType), "PATH... is the only argument")
    defaults = _observe(group, [])
    defaults.pop(arguments[0].name)
    flags: dict[str, list[Any]] = {}
    value_options: dict[str, dict[str, Any]] = {}
    for param in command.params:
        if param is arguments[0]:
            continue
        where = f"--{param.name}"
        _require(param.param_type_name == "option" and param.expose_value and not param.is_eager
                 and param.callback is None and param.envvar is None and param.nargs == 1
                 and not param.count and not param.prompt, where)
        if param.is_flag:
            _require(not param.multiple, where)
            for opt in [*param.opts, *param.secondary_opts]:
                flags[opt] = [param.name, _observe(group, [opt])[param.name]]
            continue
        option = {"name": param.name, "multiple": param.multiple, **_value_type(param.type, where, types, TyperChoice, TyperPath)}
        for opt in param.opts:
            value_options[opt] = option
    for name, value in defaults.items():
        _require(value is None or isinstance(value, (bool, int, float, str)), f"the default of {name}")
    return {"ARGUMENT": arguments[0].name, "DEFAULTS": defaults, "FLAGS": flags, "VALUE_OPTIONS": value_options}


def _value_type(click_type: Any, where: str, types: Any, choice_type: type, path_type: type) -> dict[str, Any]:
    if isinstance(click_type, choice_type):
        _require(click_type.case_sensitive and all(isinstance(c, str) for c in click_type.choices), where)
        return {"type": "choice", "choices": list(click_type.choices)}
    if isinstance(click_type, (types.IntParamType, types.FloatParamType)):
        bounded = isinstance(click_type, types._NumberRangeBase)
        _require(not (bounded and click_type.clamp), where)
        return {"type": "int" if isinstance(click_type, types.IntParamType) else "float",
                "min": click_type.min if bounded else None, "max": click_type.max if bounded else None,
                "min_open": bounded and click_type.min_open, "max_open": bounded and click_type.max_open}
    if isinstance(click_type, path_type):
        _require(not (click_type.exists or click_type.resolve_path or click_type.allow_dash or click_type.type), where)
        return {"type": "path", "file_okay": click_type.file_okay, "dir_okay": click_type.dir_okay,
                "readable": click_type.readable, "writable": click_type.writable}
    _require(type(click_type) is types.StringParamType, f"{where} (type {click_type!r})")
    return {"type": "str"}


def _observe(group: Any, options: list[str]) -> dict[str, Any]:
    """The keywords cli.scan passes to scan_command for `fakescope scan OPTIONS probe-path`."""
    from unittest import mock

    from fakescope_cli import cli

    seen: dict[str, Any] = {}
    with mock.patch.object(cli, "scan_command", lambda **params: seen.update(params) or 0):
        group.main(["scan", *options, _PROBE_PATH], prog_name="fakescope", standalone_mode=False)
    return seen


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise ValueError(f"scan_argv cannot follow typer's scan command here: {what}; teach parse() first")


def render_spec(spec: Mapping[str, Any]) -> str:
    from pprint import pformat

    lines = ['"""GENERATED from typer\'s command for `fakescope scan` by `python -m fakescope_cli.scan_argv`:',
             "do not edit. tests/test_scan_argv.py fails when it no longer matches cli.scan.", '"""', ""]
    for name, value in spec.items():
        lines += [f"{name} = {pformat(value, width=110, sort_dicts=False)}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    with open(SPEC_MODULE, "w", encoding="utf-8") as spec_file:
        spec_file.write(render_spec(spec_from_typer()))
    print(f"wrote {SPEC_MODULE}")
