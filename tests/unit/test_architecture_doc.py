"""docs/architecture.md draws the code as it is: its layer diagram names every module."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "celeriac"


def _layers_block() -> str:
    text = (ROOT / "docs" / "architecture.md").read_text()
    match = re.search(r"## Layers\n.*?```\n(.*?)```", text, re.S)
    assert match, "docs/architecture.md has no code block under '## Layers'"
    return match.group(1)


def test_every_module_is_in_the_layer_diagram() -> None:
    block = _layers_block()
    words = set(re.findall(r"[A-Za-z_0-9]+", block))
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if path.name == "__init__.py":
            # A package is named by its folder, with or without a trailing slash.
            folder = relative.parent.as_posix()
            if folder != "." and folder.split("/")[-1] not in words:
                missing.append(folder + "/")
            continue
        if len(relative.parts) == 1:
            if path.name not in block:
                missing.append(path.name)
            continue
        # A module in a package: its package's folder and its own name, in the diagram.
        top = relative.parts[0] + "/"
        if top not in block or path.stem not in words:
            missing.append(relative.as_posix())
    assert not missing, f"add these to the '## Layers' diagram of docs/architecture.md: {missing}"
