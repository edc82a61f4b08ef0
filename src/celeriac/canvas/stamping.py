"""Stamping: labels put on a signature (and through canvas primitives, on every member) that
travel with each task's message, so the task sees them (``self.request.stamps``) and a whole
family of tasks can be revoked by label (``app.control.revoke_by_stamped_headers``).

A stamp is a sending option whose name is listed in the option ``stamped_headers``, as in
Celery: ``sig.stamp(batch="b1")`` sets ``options["batch"] = "b1"`` and
``options["stamped_headers"] = ["batch"]``. Stamping again replaces a value, or with
``append_stamps=True`` keeps both in a list. A :class:`StampingVisitor` decides per signature
what to stamp, with a hook for each kind of primitive it walks through.
"""

from __future__ import annotations

import abc
import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .primitives import chain, chord, group
    from .signature import Signature

STAMPED = "stamped_headers"


class StampingVisitor(abc.ABC):
    """Decides the stamps of each signature of a canvas. Subclasses define ``on_signature`` and
    override the other hooks they need; each ``on_*`` returning a dict returns stamps to add (all
    its keys, or only those it lists under ``stamped_headers``)."""

    @abc.abstractmethod
    def on_signature(self, sig: Signature, **headers: Any) -> dict[str, Any]:
        """Stamps for one task signature."""

    def on_group_start(self, group: group, **headers: Any) -> dict[str, Any]:
        return {}

    def on_group_end(self, group: group, **headers: Any) -> None:
        return None

    def on_chain_start(self, chain: chain, **headers: Any) -> dict[str, Any]:
        return {}

    def on_chain_end(self, chain: chain, **headers: Any) -> None:
        return None

    def on_chord_header_start(self, sig: chord, **headers: Any) -> dict[str, Any]:
        from .primitives import group

        return self.on_group_start(group(*sig.tasks, app=sig._app), **headers)

    def on_chord_header_end(self, sig: chord, **headers: Any) -> None:
        from .primitives import group

        self.on_group_end(group(*sig.tasks, app=sig._app), **headers)

    def on_chord_body(self, sig: chord, **headers: Any) -> dict[str, Any]:
        return {}

    def on_callback(self, callback: Signature, **headers: Any) -> dict[str, Any]:
        return {}

    def on_errback(self, errback: Signature, **headers: Any) -> dict[str, Any]:
        return {}


def _merge(into: dict[str, Any], other: dict[str, Any], append: bool) -> None:
    """Stamps of ``other`` into ``into``: a name in both keeps the value of ``into`` (the newer),
    or with ``append`` both values in one list."""
    for key, value in other.items():
        if key == STAMPED:
            continue
        if key not in into:
            into[key] = copy.deepcopy(value)
            continue
        if not append:
            continue
        mine = into[key]
        mine = list(mine) if isinstance(mine, (list, tuple)) else [mine]
        mine.extend(value if isinstance(value, (list, tuple)) else [value])
        into[key] = mine


def _named(headers: dict[str, Any]) -> dict[str, Any]:
    """Only the stamps of ``headers``: every key, or those it lists under ``stamped_headers``."""
    names = headers.get(STAMPED)
    if names is None:
        return {k: v for k, v in headers.items() if k != STAMPED}
    return {k: headers[k] for k in names if k in headers}


def collect(sig: Signature, visitor_headers: dict[str, Any] | None, append: bool,
            headers: dict[str, Any], own: bool = True) -> dict[str, Any]:
    """The stamps ``sig`` ends up with: ``headers``, then what the visitor said, then with
    ``own`` the stamps ``sig`` already carries; on a clash the earlier wins, as in Celery, or with
    ``append`` both are kept in a list. The result lists every name under ``stamped_headers``."""
    out = _named(headers)
    if visitor_headers:
        _merge(out, _named(visitor_headers), append)
    if own:
        options = sig.options
        mine = {k: options[k] for k in options.get(STAMPED) or () if k in options}
        _merge(out, mine, append)
    out[STAMPED] = sorted(set(out) - {STAMPED})
    return out


def stamp_links(sig: Signature, visitor: StampingVisitor | None, append: bool, headers: dict[str, Any]) -> None:
    """Stamp ``sig``'s callbacks and errbacks with ``headers`` (not with ``sig``'s own stamps)."""
    from .signature import maybe_signature

    for key, hook in (("link", "on_callback"), ("link_error", "on_errback")):
        links = sig.options.get(key)
        if not links:
            continue
        stamped = []
        for link in links if isinstance(links, (list, tuple)) else [links]:
            callback = maybe_signature(link, app=sig._app)
            assert callback is not None
            said = getattr(visitor, hook)(callback, **headers) or {} if visitor is not None else None
            callback.stamp(visitor, append, **collect(callback, said, append, headers, own=False))
            stamped.append(callback)
        sig.options[key] = stamped


def stamp_signature(sig: Signature, visitor: StampingVisitor | None, append: bool, headers: dict[str, Any]) -> None:
    """``Signature.stamp``: its links first, then the signature itself."""
    stamp_links(sig, visitor, append, headers)
    said = (visitor.on_signature(sig, **headers) or {}) if visitor is not None else None
    sig.options.update(collect(sig, said, append, headers))


def stamp_members(members: list[Signature], visitor: StampingVisitor | None, append: bool,
                  headers: dict[str, Any]) -> list[Signature]:
    for member in members:
        member.stamp(visitor, append, **headers)
    return members
