"""asyncio: each member is a forked pool process running an event loop, with up to ``width``
(``worker_async_concurrency``) tasks at once, one slot each. ``async def`` tasks are awaited
there; plain ones run in the loop's thread executor."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .prefork import PreforkPool

if TYPE_CHECKING:
    from ..consumer import Consumer


class AsyncioPool(PreforkPool):
    name = "asyncio"

    def process_consumer(self, index: int) -> Consumer:
        from ..async_consumer import AsyncConsumer

        sup = self.sup
        return AsyncConsumer(sup.app, hostname=sup.hostname, incarnation=sup.incarnation, index=index,
                             queues=sup.queues, prefetch=sup.prefetch, slots=sup.slots,
                             max_tasks=sup.max_tasks_per_child, max_memory_kib=sup.max_memory_per_child,
                             width=self.width)
