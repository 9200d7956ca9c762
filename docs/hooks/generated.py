"""MkDocs hook: pages generated at build time, so they never drift from the code and data.

- ``cli.md``: the ``<!-- g2lstm-cli -->`` marker becomes the ``--help`` of every ``g2lstm``
  command and sub-command, rendered from the argparse parser itself.
- ``<!-- readme:SLUG -->``: the README section with that heading (e.g. ``works-with``), so a
  page and the README cannot drift apart; ``<!-- file:NAME.md -->``: a whole top-level file
  (``ARCHITECTURE.md``).
- ``results/*.md``: one page per ``##`` section of ``benchmarks/RESULTS.md`` (each table
  with its command and machine), plus the figures and reports under ``benchmarks/`` that those
  sections link to, copied under ``results/``.
"""

from __future__ import annotations

import argparse
import io
import re
from contextlib import redirect_stdout
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
#: benchmark folders whose files the result pages link to
BENCH_DIRS = ("figures", "reproduce-cpu-2seeds")
CLI_MARKER = "<!-- g2lstm-cli -->"
README_MARKER = re.compile(r"<!-- readme:([a-z-]+) -->")
FILE_MARKER = re.compile(r"<!-- file:([A-Za-z0-9_.-]+\.md) -->")


# ----------------------------------------------------------------------------- CLI reference
def _help(parser: argparse.ArgumentParser) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        parser.print_help()
    return out.getvalue().rstrip()


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps sub-commands here only
        if isinstance(action, argparse._SubParsersAction):
            return dict(action._name_parser_map)
    return {}


def cli_markdown() -> str:
    """Markdown with a section per command: its help text, then its sub-commands'."""
    import os

    from g2lstm.cli import build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps help at the terminal width
    lines: list[str] = []

    def walk(parser: argparse.ArgumentParser, name: str, depth: int) -> None:
        lines.extend([f"{'#' * depth} `{name}`", "", "```text", _help(parser), "```", ""])
        for sub, child in _subparsers(parser).items():
            walk(child, f"{name} {sub}", min(depth + 1, 4))

    walk(build_parser(), "g2lstm", 2)
    return "\n".join(lines)


# ----------------------------------------------------------------------------- result pages
def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def result_sections() -> list[tuple[str, str, str]]:
    """``(slug, title, markdown)`` of each ``##`` section of RESULTS.md, links rewritten to
    the copies under ``results/``."""
    text = RESULTS.read_text(encoding="utf-8")
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    out = []
    seen: set[str] = set()
    for title, body in zip(parts[1::2], parts[2::2]):
        slug = "-".join(_slug(title.replace("`", "")).split("-")[:6])
        while slug in seen:
            slug += "-2"
        seen.add(slug)
        # a link to a figures folder opens its report
        body = re.sub(r"\]\(((?:figures|reproduce-cpu-2seeds)/[^)]*?)/\)", r"](\1/report.md)", body)
        out.append((slug, title, f"# {title}\n{body}"))
    return out


def results_index(sections: list[tuple[str, str, str]]) -> str:
    intro = RESULTS.read_text(encoding="utf-8").split("\n## ", 1)[0]
    rows = "\n".join(f"- [{title}]({slug}.md)" for slug, title, _ in sections)
    return (
        f"{intro.strip()}\n\nEvery number here was measured on this project's machines by the "
        "command printed beside it; each page is one section of `benchmarks/RESULTS.md` "
        f"(rendered when the site is built).\n\n{rows}\n"
    )


def _generated(files: Files, path: str, content: str | bytes, config: object) -> None:
    files.append(File.generated(config, path, content=content))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- hooks
def on_config(config: dict) -> dict:
    """Put one nav entry per results section under "Results"."""
    pages = [{"Overview": "results/index.md"}]
    pages += [
        {title.replace("`", ""): f"results/{slug}.md"} for slug, title, _ in result_sections()
    ]
    for i, item in enumerate(config["nav"] or []):
        if isinstance(item, dict) and item.get("Results") == "results/index.md":
            config["nav"][i] = {"Results": pages}
    return config


def on_files(files: Files, config: object) -> Files:
    sections = result_sections()
    _generated(files, "results/index.md", results_index(sections), config)
    for slug, _, markdown in sections:
        _generated(files, f"results/{slug}.md", markdown, config)
    for folder in BENCH_DIRS:
        for src in sorted((ROOT / "benchmarks" / folder).rglob("*")):
            if src.is_file() and src.suffix in {".md", ".png", ".svg", ".json", ".csv"}:
                rel = src.relative_to(ROOT / "benchmarks").as_posix()
                _generated(files, f"results/{rel}", src.read_bytes(), config)
    return files


def readme_section(slug: str) -> str:
    """The body of the README section whose heading slugifies to ``slug`` (any level)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for match in re.finditer(r"^(#+) (.+)$", text, flags=re.M):
        if _slug(match.group(2)) == slug:
            rest = text[match.end() :]
            end = re.search(rf"^#{{1,{len(match.group(1))}}} ", rest, flags=re.M)
            return (rest[: end.start()] if end else rest).strip()
    raise ValueError(f"README.md has no section {slug!r} (docs marker <!-- readme:{slug} -->)")


def on_page_markdown(markdown: str, page: object, config: object, files: Files) -> str:
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_markdown())
    markdown = FILE_MARKER.sub(lambda m: (ROOT / m.group(1)).read_text(encoding="utf-8"), markdown)
    return README_MARKER.sub(lambda m: readme_section(m.group(1)), markdown)
