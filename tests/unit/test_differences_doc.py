"""docs/differences.md keeps every row of the README's table of deliberate differences, so the
two cannot disagree."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def table_rows(text: str, start: str, end: str) -> list[str]:
    section = text[text.index(start):text.index(end)]
    return [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| Celery |")]


def test_every_readme_difference_is_in_the_differences_page() -> None:
    readme = (ROOT / "README.md").read_text()
    page = (ROOT / "docs" / "differences.md").read_text()
    rows = table_rows(readme, "## What is different from Celery, on purpose", "Settings celeriac has no use for")
    assert len(rows) > 10
    missing = [row[:80] for row in rows if row not in page]
    assert missing == [], "add these README rows to docs/differences.md"
