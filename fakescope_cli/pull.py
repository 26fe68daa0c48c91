"""`fakescope models pull NAME|REPO_ID`: download a checkpoint from a Hugging Face-compatible hub
and write its `fakescope.json` with the revision and the sha256 of every weight file pinned.

huggingface_hub does the transfer: it honours HF_ENDPOINT, and a connection dropped mid-file is
resumed within the run with an HTTP Range request from the last whole 10 MiB chunk written (its
version 1.x+ keeps no partial file across runs: a killed command fetches that file again; files
already complete are not fetched again). fakescope adds: which files to fetch (the top level
of the repo only; safetensors weights, pickle ones only with --trust-pickle, never a trainer's
`training_args.bin`), the resolved commit for every file so that they all come from one revision,
a check of each weight file against the sha256 the hub lists, and the manifest. A token is read
from the environment only (HF_TOKEN), never from a flag or a stored login. A folder that already
holds the pinned files of the asked revision is used as it is, without a network request.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fakescope_cli import presets
from fakescope_cli.checkpoints import cached_sha256, weights_identity
from fakescope_cli.errors import DetectorUnavailable, UsageError
from fakescope_cli.protocol import MANIFEST_NAME, ManifestError, protocol_from_manifest

HUB_HINT = "pip install 'fakescope[hub]' (or 'fakescope[hf]')"
REPO_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}")
# Files a checkpoint folder needs beside its weights (configs, tokenizers, templates).
SIDE_FILE_SUFFIXES = (".json", ".jinja", ".txt", ".model", ".tiktoken")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")  # the suffixes the loaders refuse without --trust-pickle
# Pickle files trainers leave in a repo that are never weights.
NOT_WEIGHTS = frozenset({"training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth", "scaler.pt"})
# A checkpoint with any of these has its own processor; one without takes its preset's `processor_from`.
PROCESSOR_MARKERS = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "preprocessor_config.json",
                     "processor_config.json")
# Files of a base repo that describe the base model itself, not its processor: never borrowed.
NOT_PROCESSOR = frozenset({"config.json", "generation_config.json", MANIFEST_NAME})


@dataclass
class PullResult:
    path: Path
    repo_id: str
    revision: str
    preset: str | None
    already_present: bool
    files: list[str] = field(default_factory=list)
    weights_sha256: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "repo_id": self.repo_id, "revision": self.revision, "preset": self.preset,
                "already_present": self.already_present, "files": self.files,
                "weights_sha256": self.weights_sha256, "notes": self.notes}


def models_dir() -> Path:
    """Where pulled checkpoints go: $FAKESCOPE_MODELS_DIR, else the user data folder."""
    env = os.environ.get("FAKESCOPE_MODELS_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("fakescope")) / "models"


def resolve(name_or_repo: str) -> tuple[str, presets.Preset | None]:
    """(repo id, preset) for a preset name or a hub repo id."""
    preset = presets.find(name_or_repo)
    if preset is not None:
        if not preset.repo_id or not preset.data.get("weights_public"):
            raise UsageError(f"{preset.data.get('title', preset.name)}: no public weights on a hub repo to pull "
                             f"({preset.data.get('needs') or preset.data.get('licence')})")
        return preset.repo_id, preset
    if REPO_ID_RE.fullmatch(name_or_repo):
        return name_or_repo, None
    names = ", ".join(p.name for p in presets.catalogue() if p.repo_id and p.data.get("weights_public"))
    raise UsageError(f"{name_or_repo!r} is neither a preset nor a hub repo id (owner/name); presets: {names}")


def pull(name_or_repo: str, *, revision: str | None = None, dest: str | os.PathLike[str] | None = None,
         trust_pickle: bool = False, refresh: bool = False,
         log: Callable[[str], None] = lambda _m: None) -> PullResult:
    repo_id, preset = resolve(name_or_repo)
    folder = Path(dest) if dest is not None else models_dir() / repo_id.replace("/", "--")
    present = None if refresh else _already_present(folder, repo_id, revision)
    if present is not None:
        log(f"{repo_id} is already in {folder} (revision {present.revision}); nothing downloaded")
        return present

    try:
        from huggingface_hub import HfApi, errors, hf_hub_download
    except ImportError:
        raise DetectorUnavailable(f"models pull needs huggingface_hub: {HUB_HINT}") from None
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or False
    api = HfApi(token=token)
    try:
        info = api.model_info(repo_id, revision=revision, files_metadata=True, token=token)
    except errors.RepositoryNotFoundError:
        raise DetectorUnavailable(f"{repo_id}: no such model repository on {api.endpoint} (or it needs a token in "
                                  "$HF_TOKEN)") from None
    except errors.RevisionNotFoundError:
        raise DetectorUnavailable(f"{repo_id}: no revision {revision!r} on {api.endpoint}") from None
    except Exception as exc:  # noqa: BLE001 - httpx / hub errors: one line, exit 4
        raise DetectorUnavailable(f"{repo_id}: cannot reach {api.endpoint}: {_short(exc)}") from None
    commit = info.sha
    if not commit:
        raise DetectorUnavailable(f"{repo_id}: the hub at {api.endpoint} did not say which commit {revision or 'main'} is")
    siblings = {s.rfilename: s for s in (info.siblings or [])}
    wanted, weights, notes = choose_files(list(siblings), trust_pickle=trust_pickle, repo_id=repo_id)

    folder.mkdir(parents=True, exist_ok=True)
    log(f"pulling {repo_id} at {commit[:12]} into {folder}: {len(wanted)} files")
    for name in wanted:
        _download(hf_hub_download, errors, repo_id, name, commit, folder, token, force=False)
    hashes: dict[str, str] = {}
    for name in weights:
        digest = cached_sha256(folder / name)
        expected = _listed_sha256(siblings[name])
        if expected is not None and digest != expected:
            # A local copy the hub library took for current (same commit, edited since): fetch it again.
            _download(hf_hub_download, errors, repo_id, name, commit, folder, token, force=True)
            digest = cached_sha256(folder / name)
            if digest != expected:
                raise DetectorUnavailable(f"{repo_id}: {name} hashes to {digest}, but the hub lists {expected}")
        hashes[name] = digest

    borrowed = None
    base_repo = preset.data.get("processor_from") if preset else None
    if base_repo and not any((folder / n).is_file() for n in PROCESSOR_MARKERS):
        borrowed = _borrow_processor(api, hf_hub_download, errors, base_repo, folder, token, log)
        wanted = wanted + borrowed["files"]
        notes.append(f"the checkpoint has no processor files; took {', '.join(borrowed['files'])} from "
                     f"{base_repo} at {borrowed['revision'][:12]}")
    identity = weights_identity([folder / n for n in weights])
    manifest_notes = write_manifest(folder, preset, repo_id=repo_id, commit=commit, requested=revision,
                                    endpoint=str(api.endpoint), hashes=hashes, identity=identity,
                                    processor_from=borrowed)
    notes.extend(manifest_notes)
    return PullResult(path=folder, repo_id=repo_id, revision=commit, preset=preset.name if preset else None,
                      already_present=False, files=wanted, weights_sha256=identity, notes=notes)


def _borrow_processor(api: Any, hf_hub_download: Any, errors: Any, base_repo: str, folder: Path, token: Any,
                      log: Callable[[str], None]) -> dict[str, Any]:
    """Tokenizer, image-processor and template files from the base model a checkpoint was tuned
    from (FakeVLM ships weights without them; its evaluation loads llava-hf's processor). Only
    files the folder lacks, never a config or weights."""
    try:
        info = api.model_info(base_repo, token=token)
    except Exception as exc:  # noqa: BLE001
        raise DetectorUnavailable(f"{base_repo} (its processor files): cannot reach it: {_short(exc)}") from None
    names = [s.rfilename for s in (info.siblings or []) if "/" not in s.rfilename]
    take = sorted(n for n in names if n.endswith(SIDE_FILE_SUFFIXES) and n not in NOT_PROCESSOR
                  and not n.endswith(".index.json") and not (folder / n).exists())
    log(f"taking {len(take)} processor files from {base_repo} at {str(info.sha)[:12]}")
    for name in take:
        _download(hf_hub_download, errors, base_repo, name, str(info.sha), folder, token, force=False)
    return {"repo_id": base_repo, "revision": info.sha, "files": take}


def choose_files(names: list[str], *, trust_pickle: bool, repo_id: str) -> tuple[list[str], list[str], list[str]]:
    """(files to download, the weight files among them, notes) from a repo's file list.

    Top-level files only: sub-folders hold training checkpoints and other variants. Safetensors
    weights win; pickle weights are taken only when there are none and --trust-pickle is given.
    """
    top = [n for n in names if "/" not in n]
    safetensors = sorted(n for n in top if n.endswith(".safetensors"))
    pickles = sorted(n for n in top if n.lower().endswith(PICKLE_SUFFIXES) and n not in NOT_WEIGHTS)
    notes: list[str] = []
    if safetensors:
        weights = safetensors
        if pickles:
            notes.append(f"left out pickle files ({', '.join(pickles[:3])}): the safetensors weights are used")
    elif pickles:
        if not trust_pickle:
            raise DetectorUnavailable(
                f"{repo_id}: only pickle weights ({', '.join(pickles[:3])}); pickle can run arbitrary code when "
                "loaded. Pull a revision with safetensors, or pass --trust-pickle if you trust its source")
        weights = pickles
    else:
        raise DetectorUnavailable(f"{repo_id}: no weights at the top of the repository (*.safetensors)")
    side = sorted(n for n in top if n.endswith(SIDE_FILE_SUFFIXES) and n != MANIFEST_NAME)
    if "config.json" not in side:
        raise DetectorUnavailable(f"{repo_id}: no config.json, so not a transformers checkpoint")
    return side + weights, weights, notes


def write_manifest(folder: Path, preset: presets.Preset | None, *, repo_id: str, commit: str, requested: str | None,
                   endpoint: str, hashes: dict[str, str], identity: str,
                   processor_from: dict[str, Any] | None = None) -> list[str]:
    """Write `fakescope.json`: the preset's manifest, the weights pin and where the files came from.
    Returns notes (e.g. a reading key this fakescope does not know yet, left out)."""
    notes: list[str] = []
    base = preset.manifest(with_reading=True) if preset else {"description": f"pulled from {repo_id}"}
    backend = preset.backend if preset else _guess_backend(folder)
    base["weights_sha256"] = identity
    base["source"] = {"repo_id": repo_id, "revision": commit, "requested_revision": requested or "main",
                      "endpoint": endpoint, "preset": preset.name if preset else None, "backend": backend,
                      "files_sha256": hashes}
    if processor_from is not None:
        base["source"]["processor_from"] = processor_from
    # Each reading key is kept only if this fakescope's manifest loader takes it: an older loader
    # would refuse the whole file for one key it does not know.
    reading = {k: base.pop(k) for k in presets.READING_KEYS if k in base}
    protocol_from_manifest(base, source=str(folder / MANIFEST_NAME))
    for key, value in reading.items():
        try:
            protocol_from_manifest({**base, key: value}, source=str(folder / MANIFEST_NAME))
        except ManifestError as exc:
            notes.append(f"this fakescope does not read {key} yet ({_short(exc, 160)}); left out of "
                         f"{MANIFEST_NAME}, so the checkpoint is not read the way it was trained")
            continue
        base[key] = value
    tmp = folder / (MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(base, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, folder / MANIFEST_NAME)
    return notes


def _already_present(folder: Path, repo_id: str, revision: str | None) -> PullResult | None:
    """The pulled checkpoint when `folder` holds `repo_id` at the asked revision with every pinned
    weight file unchanged; None when it must be downloaded (again)."""
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    source = manifest.get("source") if isinstance(manifest, dict) else None
    if not isinstance(source, dict) or source.get("repo_id") != repo_id:
        return None
    if revision is not None and revision not in (source.get("revision"), source.get("requested_revision")):
        return None
    files = source.get("files_sha256")
    if not isinstance(files, dict) or not files or not (folder / "config.json").is_file():
        return None
    for name, digest in files.items():
        path = folder / name
        if not path.is_file() or cached_sha256(path) != digest:
            return None
    return PullResult(path=folder, repo_id=repo_id, revision=str(source.get("revision")),
                      preset=source.get("preset"), already_present=True, files=sorted(files),
                      weights_sha256=manifest.get("weights_sha256"))


def _download(hf_hub_download: Any, errors: Any, repo_id: str, name: str, commit: str, folder: Path,
              token: Any, *, force: bool) -> None:
    try:
        hf_hub_download(repo_id, name, revision=commit, local_dir=folder, token=token, force_download=force)
    except errors.EntryNotFoundError:
        raise DetectorUnavailable(f"{repo_id}: {name} is listed but cannot be downloaded") from None
    except Exception as exc:  # noqa: BLE001 - network, disk: one line; the .incomplete part stays for a resume
        raise DetectorUnavailable(f"{repo_id}: downloading {name} failed ({_short(exc)}); run the same command "
                                  "again to resume") from None


def _listed_sha256(sibling: Any) -> str | None:
    lfs = getattr(sibling, "lfs", None)
    if lfs is None:
        return None
    value = lfs.get("sha256") if isinstance(lfs, dict) else getattr(lfs, "sha256", None)
    return value if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value) else None


def _guess_backend(folder: Path) -> str:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "hf"
    archs = config.get("architectures") if isinstance(config, dict) else None
    if isinstance(archs, list) and any(str(a).endswith("ForImageClassification") for a in archs):
        return "classifier"
    return "hf"


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "…"
