"""The reference pages generated from the code (scripts/gen_docs.py) match the committed ones,
so a new option, setting or signal cannot ship with stale docs."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent.parent


def gen_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_reference_pages_are_what_the_code_renders() -> None:
    """Run `python scripts/gen_docs.py` after changing a command, a setting or a signal."""
    assert gen_docs().stale() == []


def test_the_pages_cover_every_command_setting_and_signal() -> None:
    from celeriac import signals
    from celeriac.cli import cli
    from celeriac.config import SETTINGS

    module = gen_docs()
    cli_page, settings_page, signals_page = module.cli_page(), module.settings_page(), module.signals_page()
    for name in cli.commands:
        assert f"## `celeriac {name}`" in cli_page
    for name in SETTINGS:
        assert f"| `{name}` |" in settings_page
    documented = module.inspect.cleandoc(signals.__doc__ or "")
    for name, value in vars(signals).items():
        if isinstance(value, signals.Signal):
            # each signal is in the prose that says when it fires, not only in the name list
            assert re.search(rf"``{name}``", documented), f"signals.py does not say when {name} fires"
            assert f"`{name}`" in signals_page


def test_a_changed_page_is_reported_stale(tmp_path: Path) -> None:
    """The check fails on drift (and on a missing page), so the first test can fail."""
    module = gen_docs()
    (tmp_path / "cli.md").write_text(module.cli_page() + "drift\n")
    (tmp_path / "settings.md").write_text(module.settings_page())
    module.REFERENCE = tmp_path
    module.ROOT = tmp_path.parent
    assert module.stale() == [f"{tmp_path.name}/cli.md", f"{tmp_path.name}/signals.md"]
