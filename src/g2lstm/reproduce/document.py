"""A tiny document model rendered both as Markdown and as self-contained HTML.

Blocks are headings, paragraphs, bullet lists, tables and images. The HTML embeds every image
as a ``data:image/png;base64`` URI, so ``report.html`` needs no other file; the Markdown links
images by their path relative to the report folder.
"""

from __future__ import annotations

import base64
import html
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Document", "Heading", "Image", "Listing", "Paragraph", "Table"]


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Listing:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Image:
    path: Path
    caption: str


Block = Heading | Paragraph | Listing | Table | Image

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:0.8em 0;font-size:0.92em}
th,td{border:1px solid #ccc;padding:0.3em 0.6em;text-align:left}
th{background:#f3f3f3} tr:nth-child(even) td{background:#fafafa}
figure{margin:1em 0} figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:0.9em;color:#555} code{background:#f3f3f3;padding:0 0.2em}
.held{color:#1a7f37;font-weight:600} .did-not-hold{color:#c62828;font-weight:600}
.inconclusive{color:#8a6d00;font-weight:600} .not-run{color:#777}
"""


def _inline_html(text: str) -> str:
    """Escape, then render the Markdown subset used here: ``**bold**``, ``*em*``, `` `code` ``."""
    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"(?<![*\w])\*([^*]+)\*(?![*\w])", r"<em>\1</em>", out)
    for word, cls in (
        ("did not hold", "did-not-hold"),
        ("inconclusive at this scale", "inconclusive"),
        ("not run", "not-run"),
        ("held", "held"),
    ):
        out = re.sub(rf"\[\[{word}\]\]", f'<span class="{cls}">{word}</span>', out)
    return out


def _inline_md(text: str) -> str:
    return re.sub(r"\[\[([^\]]+)\]\]", r"**\1**", text)


def _cell_md(text: str) -> str:
    return _inline_md(text).replace("|", "\\|").replace("\n", " ")


@dataclass
class Document:
    """An ordered list of blocks with a title."""

    title: str
    blocks: list[Block] = field(default_factory=list)

    def h(self, level: int, text: str) -> None:
        self.blocks.append(Heading(level, text))

    def p(self, text: str) -> None:
        self.blocks.append(Paragraph(text))

    def ul(self, items: Sequence[str]) -> None:
        self.blocks.append(Listing(tuple(items)))

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        self.blocks.append(Table(tuple(header), tuple(tuple(r) for r in rows)))

    def img(self, path: Path, caption: str) -> None:
        self.blocks.append(Image(Path(path), caption))

    # ------------------------------------------------------------------ rendering
    def markdown(self, base: Path) -> str:
        """Markdown text; images are linked relative to ``base`` (the report folder).

        ``[[verdict]]`` markers become bold text.
        """
        lines = [f"# {self.title}", ""]
        for b in self.blocks:
            if isinstance(b, Heading):
                lines += [f"{'#' * (b.level + 1)} {b.text}", ""]
            elif isinstance(b, Paragraph):
                lines += [_inline_md(b.text), ""]
            elif isinstance(b, Listing):
                lines += [f"- {_inline_md(i)}" for i in b.items] + [""]
            elif isinstance(b, Table):
                lines.append("| " + " | ".join(_cell_md(c) for c in b.header) + " |")
                lines.append("|" + "---|" * len(b.header))
                lines += ["| " + " | ".join(_cell_md(c) for c in r) + " |" for r in b.rows]
                lines.append("")
            elif isinstance(b, Image):
                rel = Path(os.path.relpath(b.path, base)).as_posix()
                lines += [f"![{b.caption}]({rel})", "", f"*{b.caption}*", ""]
        return "\n".join(lines).rstrip() + "\n"

    def html(self) -> str:
        """One self-contained HTML page (images embedded as base64 data URIs)."""
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{html.escape(self.title)}</h1>",
        ]
        for b in self.blocks:
            if isinstance(b, Heading):
                n = min(b.level + 1, 6)
                parts.append(f"<h{n}>{_inline_html(b.text)}</h{n}>")
            elif isinstance(b, Paragraph):
                parts.append(f"<p>{_inline_html(b.text)}</p>")
            elif isinstance(b, Listing):
                items = "".join(f"<li>{_inline_html(i)}</li>" for i in b.items)
                parts.append(f"<ul>{items}</ul>")
            elif isinstance(b, Table):
                head = "".join(f"<th>{_inline_html(c)}</th>" for c in b.header)
                body = "".join(
                    "<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in r) + "</tr>"
                    for r in b.rows
                )
                parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            elif isinstance(b, Image):
                data = base64.b64encode(b.path.read_bytes()).decode("ascii")
                cap = _inline_html(b.caption)
                parts.append(
                    f'<figure><img alt="{html.escape(b.caption)}" '
                    f'src="data:image/png;base64,{data}"><figcaption>{cap}'
                    "</figcaption></figure>"
                )
        parts.append("</body></html>")
        return "\n".join(parts) + "\n"
