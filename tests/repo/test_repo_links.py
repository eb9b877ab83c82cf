"""The README and docs/ link only to files of this repository: a user's clone has nothing beside it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
# [text](target) and [text]: target; images too. Code spans and fenced blocks are dropped first.
INLINE = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def markdown_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def links(text: str) -> list[str]:
    text = CODE_SPAN.sub("", FENCE.sub("", text))
    return INLINE.findall(text) + REFERENCE.findall(text)


def broken_links(md: Path, text: str | None = None) -> list[str]:
    """Relative links of one file (its text, or TEXT as if it were) that leave the repository or name
    no existing file."""
    problems = []
    for target in links(md.read_text() if text is None else text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
            continue  # a URL (https:, mailto:) or an anchor in the same page
        path = target.split("#", 1)[0].split("?", 1)[0]
        if path.startswith("/"):
            problems.append(f"{target}: absolute path")
            continue
        resolved = (md.parent / path).resolve()
        if ".." in Path(path).parts and not resolved.is_relative_to(REPO):
            problems.append(f"{target}: leaves the repository")
        elif not resolved.is_relative_to(REPO):
            problems.append(f"{target}: outside the repository")
        elif not resolved.exists():
            problems.append(f"{target}: no such file")
    return problems


def test_the_scanner_sees_inline_and_reference_links_but_not_code() -> None:
    text = ("see [a](docs/a.md) and [b](<../x.md> \"t\") ![i](img.png)\n"
            "`[not](code.md)`\n```\n[fenced](no.md)\n```\n[ref]: docs/r.md\n")
    assert links(text) == ["docs/a.md", "../x.md", "img.png", "docs/r.md"]


def test_a_link_out_of_the_repository_or_to_a_missing_file_is_reported() -> None:
    text = "[a](../../shared/X.md) [b](missing.md) [c](operator.md#spec) [d](https://example.org) [e](/etc/x)"
    problems = broken_links(REPO / "docs" / "any.md", text)
    assert [p.split(":")[0] for p in problems] == ["../../shared/X.md", "missing.md", "/etc/x"]


@pytest.mark.parametrize("md", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves_to_a_file_inside_the_repository(md: Path) -> None:
    assert broken_links(md) == []
