"""Document tasks with Sphinx's autodoc, as ``celery.contrib.sphinx`` does.

In ``docs/conf.py``::

    extensions = [..., "celeriac.contrib.sphinx"]
    celery_task_prefix = "(task)"  # the default: shown before each task's name

``automodule`` with ``:members:`` then lists a module's tasks with the task function's own
signature (without ``self`` for ``bind=True`` tasks) and docstring, ``.. autotask:: proj.tasks.add``
documents one task, ``.. py:task::`` describes one by hand, and ``:py:task:`proj.tasks.add```
links to it.

Needs Sphinx (``pip install 'celeriac[sphinx]'``). On Sphinx 9 and later autodoc's class-based
documenters, which this extension adds to, are only used with ``autodoc_use_legacy_class_based``:
the extension turns it on.
"""

from __future__ import annotations

import inspect
from typing import Any

try:
    from docutils import nodes  # type: ignore[import-untyped,unused-ignore]  # no stubs unless types-docutils
    from sphinx import addnodes
    from sphinx.domains.python import PyFunction, PyXRefRole
    from sphinx.ext.autodoc import FunctionDocumenter
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ImportError("celeriac.contrib.sphinx needs Sphinx: pip install 'celeriac[sphinx]'") from exc

from ..app import _SharedTask
from ..task import Task

__all__ = ["TaskDirective", "TaskDocumenter", "setup"]


def _function_of(member: Any) -> Any:
    """The function a task was made from, or None. A task class keeps it as a class attribute,
    so read through the instance it comes back bound: unbind it."""
    wrapped = getattr(member, "__wrapped__", None)
    return getattr(wrapped, "__func__", wrapped)


def _is_task(member: Any) -> bool:
    # A shared_task stands in for the task of whichever app is current: documented the same way.
    return isinstance(member, (Task, _SharedTask)) and _function_of(member) is not None


class TaskDocumenter(FunctionDocumenter):
    """autodoc's documenter for tasks: ``autotask``, and the tasks among ``automodule``'s members."""

    objtype = "task"
    member_order = 11  # after functions (autodoc_member_order = "groupwise")

    @classmethod
    def can_document_member(cls, member: Any, membername: str, isattr: bool, parent: Any) -> bool:
        return _is_task(member)

    def format_args(self, **kwargs: Any) -> str:
        """The task function's signature, as callers pass arguments (``delay(x, y)``)."""
        wrapped = _function_of(self.object)
        if wrapped is None:
            return ""
        sig = inspect.signature(wrapped)
        params = list(sig.parameters.values())
        bound = bool(getattr(self.object, "bind", False))
        if params and (bound or params[0].name in ("self", "cls")):
            sig = sig.replace(parameters=params[1:])
        return str(sig)

    def document_members(self, all_members: bool = False) -> None:
        return None  # a task's attributes (retry settings, ...) are not its API

    def check_module(self) -> bool:
        # The task object is an instance made by the decorator: the module that counts is the
        # one that defined its function.
        wrapped = _function_of(self.object)
        if wrapped is not None and getattr(wrapped, "__module__", None) == self.modname:
            return True
        return bool(super().check_module())


class TaskDirective(PyFunction):
    """``.. py:task::``: a function description shown with ``celery_task_prefix``."""

    def get_signature_prefix(self, sig: str) -> list[nodes.Node]:
        return [nodes.Text(self.env.config.celery_task_prefix), addnodes.desc_sig_space()]


def autodoc_skip_member_handler(app: Any, what: str, name: str, obj: Any, skip: bool,
                                options: Any) -> bool | None:
    """Keep tasks among ``automodule``'s members: autodoc skips an instance whose docstring is
    its class's, and a task's class takes the function's docstring."""
    if skip and _is_task(obj):
        return False
    return None


def setup(app: Any) -> dict[str, Any]:
    """The Sphinx extension's entry point."""
    app.setup_extension("sphinx.ext.autodoc")
    if hasattr(app.config, "autodoc_use_legacy_class_based"):
        # Sphinx 9+ only consults registered documenters (ours) in its legacy mode.
        app.config.autodoc_use_legacy_class_based = True
    app.add_autodocumenter(TaskDocumenter)
    app.add_directive_to_domain("py", "task", TaskDirective)
    app.add_role_to_domain("py", "task", PyXRefRole(fix_parens=True))
    app.add_config_value("celery_task_prefix", "(task)", "env")
    app.connect("autodoc-skip-member", autodoc_skip_member_handler)
    return {"parallel_read_safe": True}
