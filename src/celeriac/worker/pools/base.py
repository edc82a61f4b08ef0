"""The pool contract: how the supervisor starts, counts, signals and reaps the members that
run tasks, and which slots (worker/slots.py) each member writes.

A member is a pool process (prefork, asyncio) or a thread of the supervisor's process
(threads, solo). Each member is its own consumer (worker/consumer.py) and runs up to ``width``
tasks at once, one per slot: member ``i`` owns slots ``i * width`` to ``(i + 1) * width - 1``.
The supervisor reads those slots to renew leases of started tasks, enforce hard limits and
recover what a dead member held; it never needs to know how a member runs its tasks.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from ..consumer import Consumer
    from ..supervisor import Supervisor


class Pool(abc.ABC):
    name: ClassVar[str]
    #: Members are processes of their own, so one can be killed: hard time limits and
    #: ``revoke(terminate=True)`` work, and a member's death is reaped.
    processes: ClassVar[bool] = False

    def __init__(self, supervisor: Supervisor, width: int = 1) -> None:
        self.sup = supervisor
        self.width = max(1, width)

    def __str__(self) -> str:
        return self.name

    def slots_of(self, index: int) -> range:
        return range(index * self.width, (index + 1) * self.width)

    def slot_owners(self) -> list[tuple[int, int]]:
        """``(pid, slot)`` for every slot of every member (threads share the supervisor's pid)."""
        return [(pid, slot) for pid, index in self.members() for slot in self.slots_of(index)]

    def consumer(self, index: int, in_thread: bool) -> Consumer:
        from ..consumer import Consumer

        sup = self.sup
        return Consumer(sup.app, hostname=sup.hostname, incarnation=sup.incarnation, index=index,
                        queues=sup.queues, prefetch=sup.prefetch, slots=sup.slots,
                        max_tasks=None if in_thread else sup.max_tasks_per_child,
                        max_memory_kib=None if in_thread else sup.max_memory_per_child, in_thread=in_thread)

    @abc.abstractmethod
    def start(self, index: int) -> str:
        """Start member ``index``; return the consumer name its leases are held under."""

    @abc.abstractmethod
    def members(self) -> list[tuple[int, int]]:
        """``(pid, index)`` of every running member, by index."""

    @abc.abstractmethod
    def signal(self, signum: int) -> None:
        """Send ``signum`` to every member: SIGTERM is a warm stop, SIGKILL a cold one."""

    @abc.abstractmethod
    def alive(self) -> bool:
        """Whether any member still runs."""

    @abc.abstractmethod
    def reap(self, block: bool) -> list[tuple[int, int, int]]:
        """``(index, pid, wait status)`` of members that ended since the last call; with
        ``block``, wait until every member has ended."""

    @abc.abstractmethod
    def shrink(self, target: int) -> None:
        """Stop members ``target`` and above warmly."""
