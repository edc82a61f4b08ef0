#!/usr/bin/env python
"""Compare Celery 5's public surface with celeriac's and write docs/celery-api-coverage.md.

Celery's side is introspected from the installed ``celery`` (the dev extra): ``celery.__all__``,
the public attributes of ``Celery``, ``Task``, the result classes, ``Signature``, ``Control`` and
``Inspect``, the names of ``celery.canvas/signals/exceptions/states/schedules``, the remote
control commands, ``celery.contrib.*``, ``celery.utils.log`` and the click CLI (commands and each
command's options). celeriac's side is looked up by name in the matching object.

Every Celery name celeriac lacks is either listed in DECISIONS below ("deliberately not", with
why) or reported as "missing". ``--check`` exits 1 when the committed document differs from what
this run would write (tests/unit/test_celery_api_coverage.py runs it).

    .venv/bin/python scripts/celery_api_audit.py [--check] [--out docs/celery-api-coverage.md]
"""

from __future__ import annotations

import argparse
import importlib
import sys
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "celery-api-coverage.md"

# Reasons shared by many rows.
KOMBU = "deliberately not: kombu/AMQP plumbing; celeriac's storage engines have no exchanges, producers or channels"
BOOTSTEPS = "deliberately not: no bootsteps graph or loader classes; wiring is explicit (STYLE.md 9)"
PICKLE = "deliberately not: results and messages are JSON only (DESIGN.md 1.9)"
INTERNAL = "deliberately not: Celery-internal helper, not used by applications"
EVENTLET = "deliberately not: -P eventlet/gevent are refused with advice (use -P asyncio or threads)"
DEBUG = "deliberately not: debugging aid tied to Celery's internals (memdump/objgraph)"
AMQP_CLI = "deliberately not: AMQP shell for RabbitMQ; celeriac has no AMQP broker"

# (area title, Celery name) -> why celeriac does not have it. Anything else celeriac lacks is "missing".
DECISIONS: dict[tuple[str, str], str] = {
    **{("celery", n): INTERNAL for n in ("bugreport", "uuid")},
    **{("celery", n): "deliberately not: Celery's self-replacing lazy submodule aliases (STYLE.md 9)"
       for n in ("execute", "log", "messaging", "registry")},
    ("celery", "maybe_patch_concurrency"): EVENTLET,
    **{("celery", n): "deliberately not: Celery's own version; celeriac.__version__ is celeriac's"
       for n in ("SERIES", "VERSION", "VERSION_BANNER", "version_info", "version_info_t")},
    **{("celery.Celery", n): KOMBU for n in (
        "amqp", "amqp_cls", "connection", "connection_for_read", "connection_for_write", "producer_pool",
        "pool", "broker_connection", "default_connection", "default_producer", "_pool",
        "connection_or_acquire", "producer_or_acquire", "create_task_cls", "select_queues")},
    **{("celery.Celery", n): BOOTSTEPS for n in (
        "steps", "loader", "loader_cls", "user_options", "registry_cls", "log_cls", "log", "events_cls",
        "control_cls", "Pickler", "subclass_with_self", "set_current", "set_default", "setup_security",
        "annotations", "builtin_fixups", "fixups", "on_init", "on_configure", "on_after_configure",
        "on_after_finalize", "on_after_fork", "_after_fork", "configured", "finalize", "finalized",
        "autofinalize", "strict_typing", "namespace", "thread_oid", "backend_cls",
        "Beat", "Worker", "WorkController", "GroupResult", "ResultSet", "AsyncResult", "Task",
        "task_cls", "is_frozen", "_get_backend", "add_defaults", "config_from_cmdline", "prepare_config",
        "either", "type_checker")},
    **{("celery.Celery", n): INTERNAL for n in ("IS_WINDOWS", "IS_macOS", "SYSTEM")},
    ("celery.Celery", "oid"): INTERNAL,
    ("celery.Celery", "bugreport"): INTERNAL,
    ("celery.Celery", "start"): "deliberately not: run the CLI (`celeriac ...` / `python -m celeriac`)",
    ("celery.Celery", "worker_main"): "deliberately not: start workers with `celeriac worker` or celeriac.testing",
    **{("celery.Task", n): BOOTSTEPS for n in (
        "Strategy", "Request", "from_config", "_exec_options", "_backend", "_get_app", "_get_exec_options",
        "annotate", "bind", "_app", "_decorated", "_default_request", "__bound__", "__trace__", "__v2_compat__",
        "add_trail", "push_request", "pop_request", "start_strategy", "__header__", "on_bound", "trail",
        "resultrepr_maxsize", "abstract", "_stackprotected", "_orig_run", "typing", "from_config")},
    ("celery.Task", "send_events"): "deliberately not: events are a worker setting (-E / worker_send_task_events)",
    ("celery.Task", "serializer"): PICKLE,
    **{("celery.Task", n): INTERNAL for n in ("shadow_name", "add_around", "signature_from_request",
                                             "subtask_from_request", "request_stack", "OperationalError")},
    **{(f"celery.result.{c}", "as_list"): INTERNAL for c in ("AsyncResult", "EagerResult", "GroupResult")},
    **{(f"celery.result.{c}", "TimeoutError"): "deliberately not: shadows the builtin; get() raises "
       "celeriac.exceptions.ResultTimeout, a builtin TimeoutError" for c in ("AsyncResult", "EagerResult")},
    **{(f"celery.result.{c}", "then"): "deliberately not: vine promises; use link= / chains"
       for c in ("AsyncResult", "EagerResult", "ResultSet", "GroupResult")},
    **{(f"celery.result.{c}", "iter_native"): "deliberately not: `join` waits on the store's notification already"
       for c in ("ResultSet", "GroupResult")},
    **{(f"celery.result.{c}", "supports_native_join"): INTERNAL
       for c in ("AsyncResult", "EagerResult", "ResultSet", "GroupResult")},
    **{(f"celery.result.{c}", "join_native"): "deliberately not: `join` waits on the store's notification already"
       for c in ("ResultSet", "GroupResult")},
    **{("celery.exceptions", n): KOMBU for n in ("QueueNotFound", "CPendingDeprecationWarning",
                                                   "CDeprecationWarning", "AlwaysEagerIgnored")},
    ("celery.exceptions", "TimeoutError"): "deliberately not: shadows the builtin; celeriac raises "
                                           "ResultTimeout, a subclass of the builtin TimeoutError",
    **{("celery.exceptions", n): "deliberately not: Celery's deprecation warnings for its own API"
       for n in ("CPendingDeprecationWarning", "CDeprecationWarning", "SecurityWarning", "DuplicateNodenameWarning",
                 "FixupWarning", "NotConfigured")},
    ("celery.exceptions", "SecurityError"): "deliberately not: bad signatures raise celeriac.exceptions.SignatureError",
    ("celery.exceptions", "ImproperlyConfigured"): "missing",
    ("celery.exceptions", "IncompleteStream"): KOMBU,
    **{("celery.signals", n): "deliberately not: no bootsteps/consumer steps to hook"
       for n in ("import_modules", "user_preload_options", "celeryd_init_done")},
    **{("celery.signals", n): "deliberately not: eventlet/gevent pools are not offered"
       for n in ("eventlet_pool_started", "eventlet_pool_preshutdown", "eventlet_pool_postshutdown",
                 "eventlet_pool_apply")},
    **{("celery.states", n): INTERNAL for n in ("NONE_PRECEDENCE", "PRECEDENCE_LOOKUP")},
    **{("celery.schedules", n): INTERNAL for n in ("ParseException", "crontab_parser")},
    ("celery.schedules", "maybe_schedule"): "deliberately not: celeriac.schedules.as_schedule does this",
    **{("celery.app.control.Control", n): KOMBU for n in (
        "mailbox", "Mailbox", "app", "election", "_error_handler", "heartbeat")},
    ("celery.app.control.Control", "pool_restart"): "deliberately not: restart the worker (`celeriac multi restart`)",
    ("celery.app.control.Control", "discard_all"): "deliberately not: old name of purge (Celery 3)",
    **{("celery.app.control.Inspect", n): DEBUG for n in ("memdump", "memsample", "objgraph")},
    **{("celery.app.control.Inspect", n): INTERNAL for n in ("app", "callback", "connection", "limit",
                                                             "pattern", "matcher", "_prepare", "_request")},
    **{("remote control commands", n): DEBUG for n in ("memdump", "memsample", "objgraph")},
    ("remote control commands", "election"): KOMBU,
    ("remote control commands", "heartbeat"): "deliberately not: workers heartbeat to the broker every second",
    ("remote control commands", "hello"): "deliberately not: used by Celery's worker-to-worker mingle step",
    ("remote control commands", "clock"): "deliberately not: celeriac uses the broker's clock, not a Lamport clock",
    ("remote control commands", "scheduled"): "deliberately not: delayed tasks live in the broker, so "
                                              "`inspect scheduled` reads them there (app.control.scheduled)",
    ("remote control commands", "terminate"): "deliberately not: `revoke` with terminate=True (what "
                                              "app.control.terminate sends)",
    ("remote control commands", "pool_restart"): "deliberately not: restart the worker (`celeriac multi restart`)",
    ("celery.contrib.pytest", "NO_WORKER"): INTERNAL,
    ("celery.contrib.pytest", "TYPE_CHECKING"): INTERNAL,
    ("celery.contrib.pytest", "use_celery_app_trap"): "deliberately not: celeriac has no implicit default app to trap",
    ("celery.contrib.pytest", "depends_on_current_app"): "deliberately not: celeriac has no implicit default "
                                                         "app to trap",
    ("celery.contrib.testing.worker", "TestWorkController"): "deliberately not: start_worker runs a real worker "
                                                            "process instead of an in-thread WorkController",
    ("celery.contrib.testing.worker", "setup_app_for_worker"): INTERNAL,
    ("celery.contrib.testing.worker", "WORKER_LOGLEVEL"): INTERNAL,
    **{("celery.canvas.Signature", n): INTERNAL for n in (
        "AsyncResult", "TYPES", "register_type", "election", "flatten_links", "reprcall",
        "append_to_list_option", "extend_list_option")},
    **{(f"celery.result.{c}", "throw"): "deliberately not: vine promise plumbing"
       for c in ("AsyncResult", "EagerResult")},
    ("CLI options of `celery shell`", "--bpython"): "deliberately not: IPython or the plain shell",
    ("CLI options of `celery shell`", "--eventlet"): EVENTLET,
    ("CLI options of `celery shell`", "--gevent"): EVENTLET,
    ("CLI options of `celery call`", "--exchange"): KOMBU,
    ("CLI options of `celery call`", "--routing-key"): "deliberately not: celeriac routes by queue (--queue)",
    ("CLI options of `celery call`", "--serializer"): PICKLE,
    ("CLI options of `celery`", "--loader"): BOOTSTEPS,
    ("celery.Celery", "uses_utc_timezone"): INTERNAL,
    ("celery.exceptions", "reraise"): INTERNAL,
    ("celery.exceptions", "CeleryCommandException"): "deliberately not: CLI errors are click's one-line errors",
    ("celery.app.control.Inspect", "clock"): "deliberately not: celeriac uses the broker's clock, not a Lamport clock",
    ("celery.app.control.Inspect", "hello"): "deliberately not: used by Celery's worker-to-worker mingle step",
    ("celery.exceptions", "AlreadyRegistered"): INTERNAL,
    ("celery.exceptions", "OperationalError"): KOMBU,
    ("CLI options of `celery worker`", "--statedb"): "deliberately not: revocations live in the broker, "
                                                     "cluster-wide, and survive restarts without a state file",
    ("CLI options of `celery worker`", "--schedule-filename"): "deliberately not: no local schedule file; "
                                                               "the schedule lives in the broker (DESIGN.md 1.5)",
    **{("CLI options of `celery events`", n): "deliberately not: event snapshot cameras (django-celery-monitor); "
       "the dashboard keeps the task history from the event stream" for n in ("--camera", "--frequency", "--maxrate")},
    ("celery.utils.log", "LoggingProxy"): INTERNAL,
    ("celery.utils.log", "set_in_sighandler"): INTERNAL,
    ("celery.utils.log", "in_sighandler"): INTERNAL,
    ("celery.utils.log", "mlevel"): INTERNAL,
    ("celery.utils.log", "get_multiprocessing_logger"): INTERNAL,
    ("celery.utils.log", "reset_multiprocessing_logger"): INTERNAL,
    ("celery.utils.log", "ColorFormatter"): INTERNAL,
    ("CLI commands", "amqp"): AMQP_CLI,
    ("CLI commands", "shell"): "missing",
    ("CLI commands", "graph"): "deliberately not: bootsteps/worker graphs of Celery's internals",
    ("CLI commands", "upgrade"): "deliberately not: converts Celery 3 settings; celeriac warns on old names",
    ("CLI commands", "logtool"): "missing",
    ("CLI commands", "migrate"): "deliberately not: `celeriac migrate-from-celery` moves a Celery broker's "
                                 "tasks; broker-to-broker moves within celeriac are not offered",
    # appended (gaps): what stays out after the Celery-compatibility pass, and why
    **{(f"CLI options of `celery {c}`", n): "deliberately not: drop privileges and set the umask in the service "
       "manager (systemd User=/Group=/UMask=, docker USER); the process is never started as root to switch"
       for c in ("worker", "beat", "events") for n in ("--uid", "--gid", "--umask", "--executable")},
    **{("CLI options of `celery events`", n): "deliberately not: daemon options of the snapshot camera, which "
       "celeriac does not have (the dashboard keeps the task history)"
       for n in ("--detach", "--logfile", "--loglevel", "--pidfile")},
    ("celery.Task", "retry_on_worker_lost"): "deliberately not: task_reject_on_worker_lost (on by default) runs "
                                             "the task again, capped by the poison-message redelivery limit",
    **{("celery.Task", n): "deliberately not: Celery 5.7's split of acks_on_failure_or_timeout, which celeriac "
       "keeps as one switch" for n in ("acks_on_failure", "acks_on_timeout")},
    ("celery.Celery", "events"): "deliberately not: kombu's event Dispatcher/Receiver/State; read the stream with "
                                 "`celeriac events --dump` or app.broker.log_read(celeriac.events.EVENT_LOG)",
    **{(f"celery.result.{c}", n): "deliberately not: Celery's DependencyGraph for dot output; iterdeps/collect "
       "walk a result's tree" for c in ("AsyncResult", "EagerResult") for n in ("build_graph", "graph")},
}
@dataclass
class Area:
    """One part of the surface: Celery's names and how to find each in celeriac."""

    title: str
    celeriac: str  # where celeriac's counterpart lives, as shown in the document
    celery_names: Callable[[], Iterable[str]]
    present: Callable[[str], bool]


def _public(names: Iterable[str]) -> list[str]:
    return sorted({n for n in names if not n.startswith("_")})


def _module_names(module_name: str) -> list[str]:
    """A module's public names: its ``__all__``, else what it defines itself (no imports)."""
    module = importlib.import_module(module_name)
    declared = getattr(module, "__all__", None)
    if declared is not None:
        return _public(declared)
    out = []
    for name, value in vars(module).items():
        if isinstance(value, types.ModuleType):
            continue
        owner = getattr(value, "__module__", None)
        if owner == module_name or (owner is None and name.isupper()):
            out.append(name)
    return _public(out)


def _has_attr(target: Callable[[], Any]) -> Callable[[str], bool]:
    def present(name: str) -> bool:
        obj = target()
        try:
            return name in dir(obj) or hasattr(obj, name)
        except Exception:  # a property that needs a live store: its name is still there
            return name in dir(type(obj))
    return present


def _in_module(module_name: str) -> Callable[[str], bool]:
    def present(name: str) -> bool:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            return False
        return hasattr(module, name)
    return present


_APP: Any = None


def celeriac_app() -> Any:
    global _APP
    if _APP is None:
        import celeriac

        _APP = celeriac.Celery("audit", broker_url="memory://audit", result_backend="memory://audit")
    return _APP


def celeriac_task() -> Any:
    app = celeriac_app()
    if "audit.noop" not in app.tasks:
        @app.task(name="audit.noop")
        def noop() -> None:
            return None
    return app.tasks["audit.noop"]


def celeriac_result(cls: str) -> Any:
    """An instance, so attributes set in ``__init__`` (``id``, ``results``, ``parent``) count."""
    from celeriac import result

    app = celeriac_app()
    one = result.AsyncResult("audit-1", app=app)
    return {"AsyncResult": one, "EagerResult": result.EagerResult("audit-2", {"status": "SUCCESS"}, app=app),
            "ResultSet": result.ResultSet([one], app=app),
            "GroupResult": result.GroupResult("audit-g", [one], app=app)}[cls]


def _celery_cli() -> Any:
    from celery.bin.celery import celery as group

    return group


def _celeriac_cli() -> Any:
    from celeriac.cli import cli

    return cli


def _options(command: Any) -> list[str]:
    """A click command's options by their longest spelling (``--loglevel``), arguments left out."""
    import click

    out = []
    for param in command.params:
        if isinstance(param, click.Option):
            spellings = [*param.opts, *param.secondary_opts]
            out.append(max(spellings, key=len))
    return sorted(set(out) - {"--help"})


def _cli_option_present(command: str) -> Callable[[str], bool]:
    def present(option: str) -> bool:
        import click

        group = _celeriac_cli()
        cmd = group if command == "" else group.commands.get(command)
        if cmd is None:
            return False
        spellings = {s for p in cmd.params if isinstance(p, click.Option) for s in (*p.opts, *p.secondary_opts)}
        return option in spellings
    return present


def _control_commands() -> list[str]:
    from celery.worker.control import Panel

    return sorted(Panel.meta)


def _remote_present(name: str) -> bool:
    from celeriac.worker.remote import Remote

    return hasattr(Remote, f"do_{name}")


def areas() -> list[Area]:
    import celery
    import celery.app.control as celery_control
    import celery.canvas
    import celery.result as celery_result

    from celeriac.control import Control, Inspect

    out = [
        Area("celery", "celeriac", lambda: _public(celery.__all__), _in_module("celeriac")),
        Area("celery.Celery", "celeriac.Celery (an app instance)", lambda: _public(dir(celery.Celery)),
             _has_attr(celeriac_app)),
        Area("celery.Task", "celeriac.Task (a registered task)", lambda: _public(dir(celery.Task)),
             _has_attr(celeriac_task)),
    ]
    for cls in ("AsyncResult", "EagerResult", "ResultSet", "GroupResult"):
        out.append(Area(f"celery.result.{cls}", f"celeriac.result.{cls}",
                        lambda cls=cls: _public(dir(getattr(celery_result, cls))),
                        _has_attr(lambda cls=cls: celeriac_result(cls))))
    out += [
        Area("celery.canvas", "celeriac.canvas", lambda: _module_names("celery.canvas"), _in_module("celeriac.canvas")),
        Area("celery.canvas.Signature", "celeriac.Signature", lambda: _public(dir(celery.canvas.Signature)),
             _has_attr(lambda: importlib.import_module("celeriac").Signature)),
        Area("celery.signals", "celeriac.signals", lambda: _module_names("celery.signals"),
             _in_module("celeriac.signals")),
        Area("celery.exceptions", "celeriac.exceptions", lambda: _module_names("celery.exceptions"),
             _in_module("celeriac.exceptions")),
        Area("celery.states", "celeriac.states",
             lambda: _public(n for n in dir(importlib.import_module("celery.states")) if n.isupper()),
             _in_module("celeriac.states")),
        Area("celery.schedules", "celeriac.schedules", lambda: _module_names("celery.schedules"),
             _in_module("celeriac.schedules")),
        Area("celery.app.control.Control", "app.control", lambda: _public(dir(celery_control.Control)),
             _has_attr(lambda: Control)),
        Area("celery.app.control.Inspect", "app.control.inspect()", lambda: _public(dir(celery_control.Inspect)),
             _has_attr(lambda: Inspect)),
        Area("remote control commands", "the worker's remote commands (worker/remote.py)", _control_commands,
             _remote_present),
        Area("celery.contrib.abortable", "celeriac.contrib.abortable",
             lambda: _module_names("celery.contrib.abortable"), _in_module("celeriac.contrib.abortable")),
        Area("celery.contrib.pytest", "celeriac.contrib.pytest",
             lambda: [n for n in _module_names("celery.contrib.pytest") if n != "pytest_configure"],
             _in_module("celeriac.contrib.pytest")),
        Area("celery.contrib.testing.worker", "celeriac.testing",
             lambda: [n for n in _module_names("celery.contrib.testing.worker")], _in_module("celeriac.testing")),
        Area("celery.contrib.rdb", "celeriac.contrib.rdb", lambda: _module_names("celery.contrib.rdb"),
             _in_module("celeriac.contrib.rdb")),
        Area("celery.contrib.sphinx", "celeriac.contrib.sphinx", lambda: ["TaskDocumenter", "TaskDirective", "setup"],
             _in_module("celeriac.contrib.sphinx")),
        Area("celery.utils.log", "celeriac.utils.log", lambda: _module_names("celery.utils.log"),
             _in_module("celeriac.utils.log")),
        Area("CLI commands", "`celeriac ...`", lambda: sorted(_celery_cli().commands),
             lambda name: name in _celeriac_cli().commands),
        Area("CLI options of `celery`", "`celeriac ...`", lambda: _options(_celery_cli()), _cli_option_present("")),
    ]
    celery_cli = _celery_cli()
    for name in sorted(celery_cli.commands):
        command = celery_cli.commands[name]
        if name in _celeriac_cli().commands and _options(command):
            out.append(Area(f"CLI options of `celery {name}`", f"`celeriac {name}`",
                            lambda command=command: _options(command), _cli_option_present(name)))
    return out


@dataclass
class Row:
    name: str
    present: bool
    note: str


def audit(area: Area) -> list[Row]:
    rows = []
    for name in area.celery_names():
        present = area.present(name)
        note = "" if present else (DECISIONS.get((area.title, name)) or "missing")
        rows.append(Row(name, present, note))
    return rows


def render() -> str:
    import celery

    results = [(area, audit(area)) for area in areas()]
    lines = [
        "# Celery API coverage",
        "",
        f"Generated by `scripts/celery_api_audit.py` against Celery {celery.__version__}: every public name of",
        "Celery's API, CLI and contrib modules, and whether celeriac has it. Do not edit by hand; run",
        "`.venv/bin/python scripts/celery_api_audit.py` (tests/unit/test_celery_api_coverage.py fails when",
        "this file is stale or a name listed as present disappears). A missing name is either",
        "*deliberately not* (with why) or *missing* (not done yet). Deliberate differences in behaviour",
        "are in docs/differences.md.",
        "",
        "## Summary",
        "",
        "| Area | celeriac | Celery names | present | deliberately not | missing |",
        "|---|---|---:|---:|---:|---:|",
    ]
    totals = [0, 0, 0, 0]
    for area, rows in results:
        counts = [len(rows), sum(r.present for r in rows),
                  sum(r.note.startswith("deliberately") for r in rows), sum(r.note == "missing" for r in rows)]
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
        lines.append(f"| {area.title} | {area.celeriac} | " + " | ".join(map(str, counts)) + " |")
    lines.append("| **total** | | " + " | ".join(f"**{n}**" for n in totals) + " |")
    lines += ["", "## Still missing", ""]
    for area, rows in results:
        missing = [r.name for r in rows if r.note == "missing"]
        if missing:
            lines.append(f"- **{area.title}**: " + ", ".join(f"`{n}`" for n in missing))
    for area, rows in results:
        lines += ["", f"## {area.title}", "", f"celeriac: {area.celeriac}", "", "| Celery | celeriac | note |",
                  "|---|---|---|"]
        for row in rows:
            lines.append(f"| `{row.name}` | {'yes' if row.present else 'no'} | {row.note} |")
    return "\n".join(lines) + "\n"


def present_rows(text: str) -> list[tuple[str, str]]:
    """(area title, name) of every row the document lists as present."""
    out = []
    area = ""
    for line in text.splitlines():
        if line.startswith("## "):
            area = line[3:]
        elif line.startswith("| `") and "| yes |" in line:
            out.append((area, line.split("`")[1]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the document is stale")
    parser.add_argument("--out", type=Path, default=DOC)
    ns = parser.parse_args(argv)
    text = render()
    if ns.check:
        current = ns.out.read_text() if ns.out.exists() else ""
        if current != text:
            print(f"{ns.out} is stale: run scripts/celery_api_audit.py", file=sys.stderr)
            return 1
        return 0
    ns.out.write_text(text)
    print(f"wrote {ns.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
