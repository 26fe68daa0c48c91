"""Detector backends behind one interface, loaded lazily by name.

Every backend, built-in or third-party, is a `Detector` subclass registered in the
`fakescope.detectors` entry-point group (fakescope's own in its pyproject.toml). What a backend can
do is declared on its class (base.py); nothing here lists backends by name. Nothing heavy is
imported until a backend is asked for: a backend module imports torch or llama_cpp when built.
"""

from __future__ import annotations

import importlib
from typing import Any

from fakescope_cli.detectors.base import Detector, DetectorInfo, DetectorResult
from fakescope_cli.errors import DetectorUnavailable, UsageError

__all__ = ["Detector", "DetectorInfo", "DetectorResult", "backend_names", "detector_class", "load_detector"]

ENTRY_POINT_GROUP = "fakescope.detectors"
OWN_DISTRIBUTION = "fakescope"


def _registered() -> dict[str, tuple[str, bool]]:
    """name -> ("module:Class", built in?) for every backend in the entry-point group."""
    from importlib.metadata import entry_points

    found: dict[str, tuple[str, bool]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)  # absent on Python 3.10's EntryPoint for some finders
        own = dist is not None and dist.metadata["Name"] == OWN_DISTRIBUTION
        if ep.name not in found or own:  # a plugin cannot replace a built-in backend
            found[ep.name] = (ep.value, own)
    return found


def backend_names() -> list[str]:
    return sorted({*_registered(), "none"})


def detector_class(name: str) -> type[Detector]:
    """The class of a backend, imported but not built (no model loaded). `package.module:Class`
    names a class directly (plugins under development, tests). Raises DetectorUnavailable."""
    target = name if ":" in name else _registered().get(name, (None, False))[0]
    if target is None:
        hint = "" if _registered() else (
            "; no backend is registered at all: fakescope's package metadata is missing or stale "
            "(reinstall it: pip install -e .)")
        raise DetectorUnavailable(f"unknown backend {name!r}; choose from: {', '.join(backend_names())}{hint}")
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise DetectorUnavailable(f"backend {name!r} cannot be imported: {exc}") from exc
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, Detector)):
        # the user named the wrong class: a usage error (exit 2), not a detector that failed to load
        raise UsageError(f"--backend {name}: {target} is not a detector "
                         "(a fakescope_cli.detectors.base.Detector subclass; docs/plugins.md)")
    return cls


def load_detector(name: str, options: dict[str, Any] | None = None) -> Detector | None:
    """Instantiate a backend; `none` means provenance only. Raises DetectorUnavailable, or UsageError for a missing or foreign option."""
    if name == "none":
        return None
    cls = detector_class(name)
    opts = {k: v for k, v in (options or {}).items() if v is not None}
    _check_options(name, cls, opts)
    return cls(**opts)


def _check_options(name: str, cls: type, opts: dict[str, Any]) -> None:
    """A clear error for an option the backend does not take (e.g. --model with builtin)."""
    import inspect

    params = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(opts) - set(params))
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        raise UsageError(f"backend {name!r} does not take {flags}")


def describe(detector: Detector | None) -> dict[str, Any] | None:
    """The detector's identity for run headers and chain of custody, as the records write it."""
    if detector is None:
        return None
    return detector.describe().to_dict()


def backend_availability() -> dict[str, str]:
    """name -> "available" or why not, without loading any model (the backend module is imported,
    which imports no heavy package; the modules it needs are only looked for)."""
    import importlib.util

    out: dict[str, str] = {"none": "available (provenance only)"}
    for name, (_target, own) in sorted(_registered().items()):
        try:
            cls = detector_class(name)
        except DetectorUnavailable as exc:
            out[name] = str(exc)
            continue
        missing = [m for m in cls.needs_modules if importlib.util.find_spec(m) is None]
        if missing:
            hint = f"; pip install 'fakescope[{cls.extra}]'" if cls.extra else ""
            out[name] = f"missing {', '.join(missing)}{hint}"
        else:
            out[name] = cls.availability() or ("available" if own else "available (plugin)")
    return out
