"""Text from input made safe to print: one function, `printable`.

Ids, bands, topic names, file and directory names, reasons: whatever comes
from an alert, a message or a path can hold a newline that forges a line of
output, or an ANSI escape that hides one, moves the cursor or retitles the
terminal. Everything the command line prints that comes from input goes
through `printable` (the library modules that format tables for it too).
"""

from __future__ import annotations

__all__ = ["printable"]


def printable(text: object) -> str:
    """``str(text)`` on one line, every character that is not printable escaped.

    Control characters (newline, carriage return, tab, ESC and the rest of
    C0, DEL, C1), format characters (bidirectional overrides, zero-width
    marks), line and paragraph separators, surrogates and unassigned code
    points become Python-style escapes (``\\n``, ``\\x1b``, ``\\u202e``);
    a backslash is shown as it is. Letters of any script stay as they are.

    Examples
    --------
    >>> printable("r\\x1b[2K\\nfake line")
    'r\\\\x1b[2K\\\\nfake line'
    """
    shown = str(text)
    if shown.isprintable():
        return shown
    return "".join(character if character.isprintable() else _escape(character)
                   for character in shown)


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(character: str) -> str:
    if character in _NAMED:
        return _NAMED[character]
    code = ord(character)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
