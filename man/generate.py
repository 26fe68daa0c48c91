"""Write man/fakescope.1 from the installed command line: `python man/generate.py`.

`--check` exits 1 (and writes nothing) when the committed page is stale. Rerun after any change to
a command, option or help text; tests/test_manpage.py fails until you do.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fakescope_cli.manpage import render  # noqa: E402

PAGE = REPO / "man" / "fakescope.1"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = PAGE.read_text(encoding="ascii") if PAGE.exists() else ""
        if current != text:
            print(f"{PAGE.relative_to(REPO)} is stale: run python man/generate.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="ascii", newline="\n")
    print(f"wrote {PAGE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
