"""Preset descriptions for display: TOML files hard-wrap them at about 95 columns, and a
word-wrapping widget narrower than that showed every source line break as a ragged short line."""
from __future__ import annotations

import re


def reflowed(text: str) -> str:
    """``text`` with the line breaks inside paragraphs turned into spaces; blank lines (paragraph
    breaks) and lines that start a list item (``-``, ``*``, ``•`` or ``1.``) are kept."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    out = []
    for paragraph in paragraphs:
        lines = [line.strip() for line in paragraph.splitlines()]
        joined: list[str] = []
        for line in lines:
            if joined and not re.match(r"([-*•]|\d+[.)])\s", line):
                joined[-1] += " " + line
            else:
                joined.append(line)
        out.append("\n".join(joined))
    return "\n\n".join(out)
