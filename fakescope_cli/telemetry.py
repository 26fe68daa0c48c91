"""No library writes outside fakescope's own cache, and none phones home.

A forensic tool must leave no trace it does not own. Some libraries write on their own when first
used: onnxruntime (1.2x+, Linux too) records a device id and an events database under
`$XDG_CACHE_HOME/Microsoft/DeveloperTools/.onnxruntime/` and a session file in the temp folder,
unless ORT_DISABLE_TELEMETRY is set before it loads (`onnxruntime.disable_telemetry_events()`
comes too late: the files are written when the library starts). Hugging Face libraries send usage
pings unless HF_HUB_DISABLE_TELEMETRY is set. Set here, when fakescope_cli is imported, so that the
CLI, its worker processes (which inherit the environment) and library users all get it. A user
who wants the telemetry back sets the variable to 0 themselves: only unset variables are filled.
"""

from __future__ import annotations

import os

QUIET_ENVIRONMENT: dict[str, str] = {
    "ORT_DISABLE_TELEMETRY": "1",  # onnxruntime: no deviceid, onnxruntime.db or .ses files
    "HF_HUB_DISABLE_TELEMETRY": "1",  # huggingface_hub: no usage pings
    "DO_NOT_TRACK": "1",  # the cross-tool convention (consoledonottrack.com) some libraries honour
}


def quiet_libraries() -> None:
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
