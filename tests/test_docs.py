"""Self-contained docs: every citation in the code, presets, scripts and README resolves in
docs/references.md, nothing points outside the repository, and every engine subcommand's --help
describes each of its options with an example."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCES = ROOT / "docs" / "references.md"
SUFFIXES = {".py", ".toml", ".md", ".sh", ".txt", ".cfg"}


def _sources() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "pyproject.toml", ROOT / ".ci" / "run"]
    for folder in ("engine", "app", "presets", "scripts", "docs", "benchmarks"):
        files += [p for p in sorted((ROOT / folder).rglob("*"))
                  if p.is_file() and p.suffix in SUFFIXES and "__pycache__" not in p.parts]
    return [p for p in files if p.exists()]


def _tests() -> list[Path]:
    return [p for p in sorted((ROOT / "tests").glob("*.py")) if p.name != Path(__file__).name]


UPPER = "A-ZÀ-ÖØ-Þ"
NAME = rf"[{UPPER}][\w'’\-]+"
LEAD = rf"(?:{NAME}|[{UPPER}])"          # a first or middle author may be one letter (Weinan E)
AUTHORS = rf"(?:{LEAD}(?:, | & | and |–))*{NAME}(?: et al\.)?"
YEAR = r"(?:19|20)\d\d"
# "Park & Yun (2025)", "Zhang et al. (2022)", "(Müller & Brown 1979)", "Zhang et al. 2022":
# a parenthesised year, or a bare year after "et al.", after two or more names, or inside the
# parenthesis that opens with the authors.  Dates (2026-11-27) are not years of citations.
CITATION = re.compile(
    rf"(?P<a1>{AUTHORS}),? \((?P<y1>{YEAR})[a-z]?\)(?![\d-])"
    rf"|(?P<a2>(?:{LEAD}(?:, | & | and ))+{NAME}|{NAME} et al\.),? "
    rf"(?P<y2>{YEAR})(?![\d-])"
    rf"|\((?P<a3>{AUTHORS}),? (?P<y3>{YEAR})(?![\d-])")
# the design notes' paper numbers (000 = Park & Yun, 001 = the textbook chapter, 002 = Zhang et
# al.) followed by a locator: "000 eq. 5.2", "(002 Fig. 4)", "001, Theorem 5"
PAPER_NUMBER = re.compile(
    r"(?<![\d.,])(?<!\d )\b00[0-2]\b,? ?(?:eqs?\.|§|Figs?\.|Result|Theorem|Thm|Appendix|Lemma)")
# an author named with a locator but no year: "Park & Yun eq. 4.1", "Zhang et al. §3.4"
YEARLESS = re.compile(rf"\b{NAME}(?: et al\.| & {NAME}) (?:eqs?\.|§|Figs?\.|Result|Theorem|Appendix)")


def _normalise(authors: str) -> str:
    return re.sub(r"(?<=\w)–(?=[{}])".format(UPPER), " & ", authors)


def _citations(text: str) -> set[str]:
    found = set()
    for m in CITATION.finditer(text):
        authors = m.group("a1") or m.group("a2") or m.group("a3")
        year = m.group("y1") or m.group("y2") or m.group("y3")
        found.add(f"{_normalise(authors)} ({year})")
    return found


# a relative path that climbs out of its folder ("../x/y"), a Markdown file named anywhere, and an
# all-caps document cited by section ("NOTES §4"): each must resolve inside the repository
CLIMBING = re.compile(r"(?<![\w.])(?:\.\./)+[\w.-]+(?:/[\w.-]+)*")
MARKDOWN = re.compile(r"\b[\w-]+\.md\b")
SECTION_OF = re.compile(r"\b([A-Z][A-Z_]{2,}) §\s?\d*")


def _outside(path: Path, text: str, markdown_names: set[str]) -> list[str]:
    found = []
    for m in CLIMBING.finditer(text):
        target = (path.parent / m.group(0)).resolve()
        if not target.is_relative_to(ROOT) or not target.exists():
            found.append(m.group(0))
    found += [m.group(0) for m in MARKDOWN.finditer(text) if m.group(0) not in markdown_names]
    found += [m.group(0) for m in SECTION_OF.finditer(text)
              if f"{m.group(1)}.md" not in markdown_names]
    return found


def _markdown_names() -> set[str]:
    return {p.name for p in ROOT.rglob("*.md") if ".venv" not in p.parts}


def test_nothing_points_outside_the_repository():
    names = _markdown_names()
    offenders = []
    for path in _sources() + _tests():  # (this file: its examples are meant to fail)
        text = path.read_text(encoding="utf-8", errors="replace")
        offenders += [f"{path.relative_to(ROOT)}: {hit}" for hit in _outside(path, text, names)]
    assert not offenders, offenders


def test_the_outside_check_finds_what_it_should():
    names = _markdown_names()
    here = ROOT / "docs" / "science.md"
    assert _outside(here, "see ../elsewhere/NOTES.md and NOTES §4", names) == [
        "../elsewhere/NOTES.md", "NOTES.md", "NOTES §4"]
    assert _outside(here, "see [the README](../README.md) and contracts.md", names) == []


def test_no_bare_paper_numbers_or_yearless_citations():
    offenders = []
    for path in _sources() + _tests():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for m in list(PAPER_NUMBER.finditer(line)) + list(YEARLESS.finditer(line)):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {m.group(0)!r}")
    assert not offenders, "cite as 'Author (year), locator' (docs/references.md):\n" + \
        "\n".join(offenders)


def test_every_citation_is_in_the_references():
    listed = _citations(REFERENCES.read_text(encoding="utf-8"))
    assert "Park & Yun (2025)" in listed and "Zhang et al. (2022)" in listed
    missing = []
    for path in _sources() + _tests():
        for citation in sorted(_citations(path.read_text(encoding="utf-8"))):
            if citation not in listed:
                missing.append(f"{path.relative_to(ROOT)}: {citation}")
    assert not missing, "not in docs/references.md:\n" + "\n".join(missing)


def test_the_citation_pattern_finds_what_it_should():
    text = ("the loss of Park & Yun (2025), eq. 5.2; (Zhang et al. 2022 §3.4); Müller–Brown "
            "(1979); (Halko, Martinsson & Tropp 2011); Wilson (1927) intervals; measured on "
            "2026-11-27; On an H100 (2026-11-27); In 2024 the; (E, Ren & Vanden-Eijnden 2007)")
    assert _citations(text) == {"Park & Yun (2025)", "Zhang et al. (2022)",
                                "Müller & Brown (1979)", "Halko, Martinsson & Tropp (2011)",
                                "Wilson (1927)", "E, Ren & Vanden-Eijnden (2007)"}
    assert PAPER_NUMBER.search("loss of 000 eq. 5.2") and PAPER_NUMBER.search("(002 Fig. 4)")
    assert PAPER_NUMBER.search("(001, Theorem 5)") and PAPER_NUMBER.search("# 002 §3:")
    assert not PAPER_NUMBER.search("escapes per 1 000 steps") and not PAPER_NUMBER.search("0.002")
    assert YEARLESS.search("(Park & Yun eq. 4.1)") and not YEARLESS.search("Park & Yun (2025), §5")


def test_docs_sections_linked_from_the_code_exist():
    science = (ROOT / "docs" / "science.md").read_text(encoding="utf-8")
    headings = {int(m.group(1)) for m in re.finditer(r"^## (\d+)\. ", science, re.M)}
    for path in _sources() + _tests():
        for m in re.finditer(r"docs/science\.md § (\d+)(?:[–-](\d+))?", path.read_text("utf-8")):
            for section in range(int(m.group(1)), int(m.group(2) or m.group(1)) + 1):
                assert section in headings, (path, m.group(0))
    for m in re.finditer(r"\]\((?!https?:)([^)#]+)", science + REFERENCES.read_text("utf-8")):
        assert (ROOT / "docs" / m.group(1)).exists(), m.group(1)


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    from engine.cli import build_parser
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_engine_subcommand_describes_each_option_with_an_example():
    commands = _subcommands()
    assert {"run", "info", "sweep", "ghosts", "cnn"} <= set(commands)
    for name, command in commands.items():
        _check_help(name, command)


def _check_help(name: str, command: argparse.ArgumentParser) -> None:
    undocumented = [a.dest for a in command._actions
                    if not isinstance(a, argparse._HelpAction) and not a.help]
    assert not undocumented, f"{name}: options without help: {undocumented}"
    text = command.format_help()
    assert "example" in text and f"python -m engine {name} " in text, text
    assert isinstance(command.formatter_class, type) and issubclass(
        command.formatter_class, argparse.RawDescriptionHelpFormatter)
