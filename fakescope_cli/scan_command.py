"""`fakescope scan` once its arguments are parsed: typer's `cli.scan` and the fast path in __main__
(a one-file scan without typer's start-up, scan_argv.py) both call scan_command.

Nothing heavy, and neither typer nor rich, is imported here at module level: the fast path runs
without them.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from fakescope_cli.errors import UsageError

if TYPE_CHECKING:
    from pathlib import Path  # annotations only: pathlib is ~2.5 ms of a one-file scan


def scan_command(
    *,
    paths: list[str],
    fmt: str,
    output: str | None,
    recursive: bool,
    follow_symlinks: bool,
    ext: list[str] | None,
    null: bool,
    backend: str,
    model: str | None,
    mmproj: str | None,
    url: str | None,
    api_key_env: str | None,
    request_timeout: float | None,
    retries: int | None,
    top_logprobs: int | None,
    manifest: Path | None,
    quantize: str | None,
    device: str | None,
    batch_size: int | None,
    attributes: bool | None,
    explain: bool | None,
    max_tokens: int | None,
    trust_pickle: bool,
    trust_remote_code: bool,
    verbose: bool,
    no_pixels: bool,
    shard: str | None,
    fail_above: float | None,
    fail_on: list[str] | None,
    only: list[str] | None,
    calibration: Path | None,
    jobs: int,
    file_timeout: float | None,
    max_pixels: int,
    max_bytes: int,
    frames: int,
    no_cache: bool,
    cache_dir: Path | None,
    quiet: bool,
    trust_anchors: Path | None,
    c2pa_settings: Path | None,
) -> int:
    """Scan, write the report and return the exit code; a UsageError for arguments that cannot be used.
    The keywords are cli.scan's parameters, choices as their string values."""
    _use_c2pa_trust(trust_anchors, c2pa_settings)
    from fakescope_cli.analyze import ScanConfig
    from fakescope_cli.inputs import normalise_exts, read_stdin_paths
    from fakescope_cli.scan import RunOptions, run_scan

    _refuse_missing_paths(paths)
    expanded: list[str] = []
    for p in paths:
        if p == "-":
            listed = read_stdin_paths(null_separated=null)
            if not null and any("\0" in name for name in listed):
                raise UsageError("the paths on stdin are NUL-separated: add -0 (--null), as for `find -print0`")
            expanded.extend(listed)
        else:
            expanded.append(p)
    calib = None
    if calibration is not None:
        from fakescope_cli.threshold_file import load_threshold_file

        try:
            calib = load_threshold_file(calibration)
            if output is not None:
                from fakescope_cli.output import refuse_overwriting_inputs

                refuse_overwriting_inputs(output, [str(calibration)])  # the threshold file is an input too
        except (OSError, ValueError, UsageError) as exc:
            raise UsageError(f"cannot use --calibration: {exc}") from None
    options = backend_options(
        model=model, mmproj=mmproj, quantize=quantize, device=device, batch_size=batch_size, attributes=attributes,
        explain=explain, max_tokens=max_tokens, trust_pickle=trust_pickle or None,
        trust_remote_code=trust_remote_code or None, verbose=verbose or None,
        **server_options(url, api_key_env, request_timeout, retries, top_logprobs, manifest),
    )
    config = ScanConfig(
        allow_pixels=not no_pixels, max_pixels=max_pixels, max_bytes=max_bytes,
        backend=backend, backend_options=options, calibration=calib,
        cache_dir=None if no_cache else str(cache_dir or _default_cache_dir()), frames=frames,
    )
    from fakescope_cli.gates import parse_fail_on
    from fakescope_cli.render import parse_only

    run = RunOptions(
        fail_on=parse_fail_on(fail_on), only=parse_only(only),
        shard=_parse_shard(shard),
        paths=expanded, config=config, fmt=fmt, output=output, jobs=jobs, file_timeout=file_timeout,
        recursive=recursive, follow_symlinks=follow_symlinks, exts=normalise_exts(ext),
        fail_above=fail_above, quiet=quiet, color=use_color() and fmt == "table" and output is None,
        arguments=sys.argv[1:],
    )
    result = run_scan(run)
    if result.interrupted and not quiet:
        print("fakescope: interrupted; results so far were written.", file=sys.stderr, flush=True)
    return result.exit_code


def use_color() -> bool:
    return "NO_COLOR" not in os.environ and sys.stdout.isatty()


def backend_options(**opts: object) -> dict[str, object]:
    return {k: v for k, v in opts.items() if v is not None}


def server_options(url: str | None, api_key_env: str | None, request_timeout: float | None, retries: int | None,
                   top_logprobs: int | None, manifest: Path | None) -> dict[str, object]:
    """Options of the server backend (None: not given, the backend's default)."""
    return {"url": url, "api_key_env": api_key_env, "request_timeout": request_timeout, "retries": retries,
            "top_logprobs": top_logprobs, "manifest": None if manifest is None else str(manifest)}


def _refuse_missing_paths(paths: list[str]) -> None:
    """A path typed on the command line that does not exist is a typo: exit 2 before any work.
    (A file that vanishes during the scan, or a name read from stdin, stays a per-file record.)"""
    import glob

    for p in paths:
        if p == "-" or os.path.lexists(p):
            continue
        if any(c in p for c in "*?["):  # a pattern, expanded by the scan as the shell would have
            if not glob.glob(p, recursive=True):
                raise UsageError(f"{p}: no file matches this pattern")
            continue
        raise UsageError(f"{p}: no such file or folder")


def _use_c2pa_trust(trust_anchors: Path | None, c2pa_settings: Path | None) -> None:
    """Check the trust files now (a usage error, exit 2) and hand them to the C2PA reader through
    the environment, which worker processes inherit."""
    if trust_anchors is None and c2pa_settings is None:
        return  # no import at all: a one-file scan pays for every module it loads
    from fakescope_cli.evidence import c2pa_trust

    for path, kind, env in ((trust_anchors, "trust-anchors", c2pa_trust.TRUST_ANCHORS_ENV),
                            (c2pa_settings, "c2pa-settings", c2pa_trust.SETTINGS_ENV)):
        if path is None:
            continue
        try:
            c2pa_trust.check_file(str(path), kind)
        except c2pa_trust.TrustConfigError as exc:
            raise UsageError(f"cannot use --{kind}: {exc}") from None
        os.environ[env] = os.path.abspath(path)


def _parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    from fakescope_cli.merge import parse_shard  # the merge machinery: only for a sharded scan

    return parse_shard(text)


def _default_cache_dir() -> Path:
    from fakescope_cli.cache import default_cache_dir

    return default_cache_dir()
