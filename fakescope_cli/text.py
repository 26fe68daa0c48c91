"""Text bound for a terminal: what a model, a server or a file name says must not steer the terminal."""

from __future__ import annotations

from fakescope_cli.render._common import display_text


def terminal_text(text: str) -> str:
    """`text` with newlines and tabs kept and every other control (ESC, BEL, CR, bidi...) shown as an
    escape such as `\\x1b`.

    A remote server's answer or error message printed raw could retitle the window, clear the screen
    or overwrite a line with `\\r`, forging what the investigator reads. Stateless per character, so
    streamed pieces can be escaped one by one.
    """
    # split("\n"), not splitlines(): the latter also breaks on \r, \x0b, \x1c..., which must show.
    return "\n".join("\t".join(display_text(cell) for cell in line.split("\t")) for line in text.split("\n"))
