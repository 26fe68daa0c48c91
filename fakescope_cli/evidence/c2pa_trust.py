"""Which signers an investigator trusts: a PEM bundle of trust anchors, or a c2pa-rs settings file.

Given by `fakescope scan --trust-anchors FILE` / `--c2pa-settings FILE`, or by the environment
variables below (the CLI options set them, so worker processes see the same lists). Both are read
from local files only; nothing is fetched. The C2PA conformance trust list and the CAWG one are
published as PEM bundles, so either can be given as it is downloaded.

What was used (file name, sha256, number of certificates) goes into the run header, into every C2PA
evidence item and into the result-cache key, so a result is never reported under another list.

Kept free of heavy imports: the run header asks for it even when no file carries C2PA data.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

TRUST_ANCHORS_ENV = "FAKESCOPE_C2PA_TRUST"
SETTINGS_ENV = "FAKESCOPE_C2PA_SETTINGS"
MAX_FILE = 16 << 20  # a trust list is a few hundred kB; refuse anything absurd

_PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"


class TrustConfigError(ValueError):
    """A trust-anchor or settings file that cannot be used (missing, not PEM, not JSON)."""


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as file:
            if os.fstat(file.fileno()).st_size > MAX_FILE:
                raise TrustConfigError(f"{what} {path} is over {MAX_FILE >> 20} MiB")
            return file.read()
    except OSError as exc:
        raise TrustConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _anchors(path: str) -> tuple[str, dict[str, Any]]:
    data = _read(path, "trust-anchor file")
    count = data.count(_PEM_BEGIN)
    if count == 0:
        raise TrustConfigError(f"trust-anchor file {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    return data.decode("ascii", "replace"), {
        "kind": "trust-anchors", "file": os.path.basename(path), "sha256": hashlib.sha256(data).hexdigest(),
        "certificates": count}


def _settings(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    data = _read(path, "C2PA settings file")
    try:
        settings = json.loads(data)
    except ValueError as exc:
        raise TrustConfigError(f"C2PA settings file {path} is not JSON: {exc}") from None
    if not isinstance(settings, dict):
        raise TrustConfigError(f"C2PA settings file {path} is not a JSON object")
    return settings, {"kind": "c2pa-settings", "file": os.path.basename(path),
                      "sha256": hashlib.sha256(data).hexdigest()}


def configured() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(settings to merge over the offline settings, what was used) from the environment.
    Raises TrustConfigError for a file that cannot be used."""
    merged: dict[str, Any] = {}
    used: list[dict[str, Any]] = []
    settings_path = os.environ.get(SETTINGS_ENV)
    if settings_path:
        settings, info = _settings(settings_path)
        merged.update(settings)
        used.append(info)
    anchors_path = os.environ.get(TRUST_ANCHORS_ENV)
    if anchors_path:
        pem, info = _anchors(anchors_path)
        merged["trust"] = {**(merged.get("trust") or {}), "trust_anchors": pem}
        used.append(info)
    if used:
        merged["verify"] = {**(merged.get("verify") or {}), "verify_trust": True}
    return merged, used


def in_use() -> list[dict[str, Any]] | None:
    """What the run header records: the lists in use, or None when none is configured."""
    try:
        return configured()[1] or None
    except TrustConfigError as exc:
        return [{"kind": "error", "error": str(exc)}]


def check_file(path: str, kind: str) -> None:
    """Raise TrustConfigError now (a usage error) rather than on the first file with a manifest."""
    if kind == "trust-anchors":
        _anchors(path)
    else:
        _settings(path)
