"""The command line: parse, then delegate. No analysis logic lives here.

Start-up stays light: heavy modules (torch, transformers, llama_cpp, onnxruntime) are imported only
by the command that needs them, never at import time of this module. No `from __future__ import
annotations` here: typer would then evaluate every option's annotation string twice per command it
builds (inspect.signature and get_type_hints), ~20 ms of every invocation; evaluated once at import,
they cost ~2 ms.
"""

import sys
from collections.abc import Callable, Iterator, MutableMapping
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from fakescope_cli import __version__, interrupts
from fakescope_cli.cli_data import data_app
from fakescope_cli.cli_models import models_app
from fakescope_cli.cli_train import train_app
from fakescope_cli.command_exit import COMMAND_ENDINGS, ending_exit_code
from fakescope_cli.errors import UsageError
from fakescope_cli.scan_command import backend_options as _backend_options
from fakescope_cli.scan_command import scan_command
from fakescope_cli.scan_command import server_options as _server_options
from fakescope_cli.scan_command import use_color as _use_color

EXIT_CODES_HELP = (
    "Exit codes: 0 done, no gate tripped; 1 a --fail-on or --fail-above gate tripped; 2 usage error (also an output "
    "that cannot be written); "
    "3 done, but some input could not be analysed (1 wins when both apply); "
    "4 a detector could not be loaded or reached; 130 interrupted (Ctrl-C / SIGTERM); "
    "141 the reader of stdout went away (e.g. | head), the command stopped."
)


class _Commands(TyperGroup):
    """Every command, with the one place where an error that ends a command becomes an exit code.

    The mapping itself is command_exit.ending_exit_code's (scan's fast path in __main__ uses it too).
    """

    def invoke(self, ctx: typer.Context) -> object:  # typer 0.28 vendors click: no `import click`
        try:
            return super().invoke(ctx)
        except COMMAND_ENDINGS as exc:
            raise typer.Exit(ending_exit_code(exc)) from None


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


# The command groups live in their own modules; typer lists groups after the commands, in this order.
app.add_typer(models_app, name="models")
app.add_typer(train_app, name="train")
app.add_typer(data_app, name="data")


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
    # The body is typer-free: __main__ runs it without typer for a plain `fakescope scan` (scan_argv.py).
    params = {name: value.value if isinstance(value, Enum) else value for name, value in locals().items()}
    raise typer.Exit(scan_command(**params))

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
