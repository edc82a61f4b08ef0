"""docs/celery-api-coverage.md (scripts/celery_api_audit.py) stays true: every Celery name it lists
as present in celeriac is still there, and the page is what the audit renders now."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent.parent


def audit_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("celery_api_audit", ROOT / "scripts" / "celery_api_audit.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_nothing_listed_as_present_has_disappeared() -> None:
    """A Celery name the committed page says celeriac has must still resolve in celeriac."""
    module = audit_script()
    by_title = {area.title: area for area in module.areas()}
    listed = module.present_rows(module.DOC.read_text())
    assert len(listed) > 300  # the page's rows were parsed, not an empty match
    gone = [(title, name) for title, name in listed if title not in by_title or not by_title[title].present(name)]
    assert gone == []


def test_the_coverage_page_is_what_the_audit_renders() -> None:
    """Run `.venv/bin/python scripts/celery_api_audit.py` after adding (or removing) Celery API."""
    import celery  # the dev extra pins the Celery the page is rendered against

    module = audit_script()
    text = module.DOC.read_text()
    assert f"against Celery {celery.__version__}:" in text, \
        f"the page was rendered against another Celery than {celery.__version__}: run scripts/celery_api_audit.py"
    assert module.render() == text


def test_every_missing_name_has_a_verdict() -> None:
    """Each row celeriac lacks says either why not, or that it is missing: never blank."""
    module = audit_script()
    for area in module.areas():
        for row in module.audit(area):
            assert row.present or row.note == "missing" or row.note.startswith("deliberately not: "), row
