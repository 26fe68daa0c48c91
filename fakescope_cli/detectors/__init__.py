"""Detector backends behind one interface, loaded lazily by name.

Built-in backends are listed here; third-party packages add theirs through the
`fakescope.detectors` entry-point group (a class taking keyword options). Nothing heavy is
imported until a backend is asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

from fakescope_cli.detectors.base import Detector, DetectorResult
from fakescope_cli.errors import DetectorUnavailable, UsageError

__all__ = ["BUILTIN_BACKENDS", "Detector", "DetectorResult", "backend_names", "load_detector"]

BUILTIN_BACKENDS: dict[str, str] = {
    "builtin": "fakescope_cli.detectors.builtin:BuiltinDetector",
    "cycle": "fakescope_cli.detectors.cycle:LatentCycleDetector",
    "fitted": "fakescope_cli.detectors.fitted:FittedDetector",
    "hf": "fakescope_cli.detectors.hf:HFDetector",
    "gguf": "fakescope_cli.detectors.gguf:GGUFDetector",
    "server": "fakescope_cli.detectors.server:ServerDetector",
}

ENTRY_POINT_GROUP = "fakescope.detectors"


def _plugin_targets() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def backend_names() -> list[str]:
    return sorted({*BUILTIN_BACKENDS, *_plugin_targets(), "none"})


def load_detector(name: str, options: dict[str, Any] | None = None) -> Detector | None:
    """Instantiate a backend; `none` means provenance only. Raises DetectorUnavailable, or UsageError for a missing or foreign option."""
    if name == "none":
        return None
    # "package.module:Class" names a detector class directly (plugins under development, tests).
    target = BUILTIN_BACKENDS.get(name) or (name if ":" in name else _plugin_targets().get(name))
    if target is None:
        raise DetectorUnavailable(f"unknown backend {name!r}; choose from: {', '.join(backend_names())}")
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise DetectorUnavailable(f"backend {name!r} cannot be imported: {exc}") from exc
    cls = getattr(module, attr)
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
    """The detector's identity for run headers and chain of custody."""
    if detector is None:
        return None
    info = {
        "id": detector.id,
        "version": detector.version,
        "weights_sha256": detector.weights_sha256,
    }
    extra = getattr(detector, "describe", None)
    if callable(extra):
        info.update(extra())
    return info


def backend_availability() -> dict[str, str]:
    """name -> "available" or why not, without loading any model (imports only)."""
    import importlib.util

    needs = {"builtin": ["onnxruntime"], "cycle": ["onnxruntime"], "fitted": ["onnxruntime"], "hf": ["torch", "transformers"], "gguf": ["llama_cpp"],
             "server": []}
    extras = {"hf": "hf", "gguf": "gguf", "server": "server"}
    out: dict[str, str] = {"none": "available (provenance only)"}
    for name in sorted({*BUILTIN_BACKENDS, *_plugin_targets()}):
        missing = [m for m in needs.get(name, []) if importlib.util.find_spec(m) is None]
        if missing:
            extra = extras.get(name)
            hint = f"; pip install 'fakescope[{extra}]'" if extra else ""
            out[name] = f"missing {', '.join(missing)}{hint}"
        elif name == "cycle":
            # its model file is not shipped: say where it is looked for, and how it is made
            from fakescope_cli.detectors.cycle import default_model_path

            path = default_model_path()
            out[name] = (f"available ({path})" if path.is_file()
                         else f"needs its model file at {path}: fakescope train cycle --taesd DIR, or --model FILE")
        elif name == "fitted":
            out[name] = "available with --model FILE (from `fakescope train detector`)"
        else:
            out[name] = "available" if name in BUILTIN_BACKENDS else "available (plugin)"
    return out
