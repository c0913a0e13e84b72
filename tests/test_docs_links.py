"""The repository's own account of the rules must hold together: every link in a Markdown file,
and every docs citation (``docs/<file>.md#<heading>``) the code makes, names a file and
heading that exist.

The code cites docs/ instead of repeating the rules (docs/README.md), so a renamed heading or a
decision record listed but never written is a broken citation; this finds it before a reader does.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".venv", ".git", "node_modules", "build", "dist", ".mypy_cache", ".ruff_cache"}
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE_CITATION = re.compile(r"\b(docs/[\w./-]+\.md)(#[\w-]+)?")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def _files(pattern: str) -> list[Path]:
    return sorted(p for p in ROOT.rglob(pattern) if not SKIP_DIRS & set(p.relative_to(ROOT).parts))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def _anchors(path: Path) -> frozenset[str]:
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match:
            slug = _slug(match.group(1))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            anchors.add(slug if count == 0 else f"{slug}-{count}")
    anchors.update(re.findall(r'<a (?:name|id)="([^"]+)"', path.read_text(encoding="utf-8")))
    return frozenset(anchors)


def _broken(target: Path, anchor: str | None) -> str | None:
    if not target.exists():
        return "no such file"
    if anchor and target.suffix == ".md" and anchor not in _anchors(target):
        return f"no heading #{anchor}"
    return None


def _markdown_links() -> list[tuple[Path, str]]:
    links = []
    for path in _files("*.md"):
        fenced = False
        for line in path.read_text(encoding="utf-8").splitlines():
            if FENCE.match(line):
                fenced = not fenced
            elif not fenced:
                links += [(path, target) for target in MARKDOWN_LINK.findall(line)]
    return links


def test_every_markdown_link_resolves() -> None:
    problems = []
    for path, target in _markdown_links():
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = path if not file_part else (path.parent / file_part).resolve()
        why = _broken(resolved, anchor or None)
        if why:
            problems.append(f"{path.relative_to(ROOT)}: ({target}) {why}")
    assert not problems, "\n".join(problems)


def test_every_docs_citation_in_the_code_resolves() -> None:
    problems = []
    for path in _files("*.py"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for file_part, anchor in CODE_CITATION.findall(line):
                why = _broken(ROOT / file_part, anchor.lstrip("#") or None)
                if why:
                    problems.append(f"{path.relative_to(ROOT)}:{number}: {file_part}{anchor} {why}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("heading", "slug"), [
    ("Conditional requests", "conditional-requests"),
    ("`GET .../slots`, same question", "get-slots-same-question"),
    ("Sync progress (docs/sync.md)", "sync-progress-docssyncmd"),
    ("0025 Read answers", "0025-read-answers"),
])
def test_slugs_follow_github(heading: str, slug: str) -> None:
    assert _slug(heading) == slug
