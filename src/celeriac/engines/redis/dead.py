"""The Redis broker's dead letters: a capped stream per queue (per shard), listed, retried or dropped."""

from __future__ import annotations

from collections.abc import Sequence

from ...brokers.base import DeadLetter
from .coord import translate_errors
from .layout import RedisLayout
from .shards import decode_tag, encode_tag


class RedisDeadLetters(RedisLayout):
    """Dead letters: list, retry and drop them."""

    @translate_errors
    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        out: list[DeadLetter] = []
        for shard, name in enumerate(self.shards(queue)):
            entries = self.client.xrange(self.keys(name).dead, "-", "+", count=limit - len(out))
            out += [DeadLetter(queue, encode_tag(shard, entry_id.decode()), f.get(b"b", b""),
                               f.get(b"reason", b"").decode(), int(f.get(b"time", 0)) / 1000.0)
                    for entry_id, f in entries]
            if len(out) >= limit:
                break
        return out

    def _dead_ids(self, queue: str, ids: Sequence[str] | None) -> list[tuple[str, list[str] | None]]:
        """Dead-letter ids per shard (None: all of that shard's)."""
        names = self.shards(queue)
        if ids is None:
            return [(name, None) for name in names]
        per: dict[str, list[str]] = {}
        for one in ids:
            shard, entry_id = decode_tag(one)
            per.setdefault(names[shard] if shard < len(names) else queue, []).append(entry_id)
        return list(per.items())

    @translate_errors
    def retry_dead(self, queue: str, ids: Sequence[str] | None = None) -> int:
        total = 0
        for name, entry_ids in self._dead_ids(queue, ids or None):  # no ids: all of them
            keys = self.keys(name)
            total += int(self._run("retry_dead", [keys.dead, *keys.streams], list(entry_ids or [])))
        return total

    @translate_errors
    def drop_dead(self, queue: str, ids: Sequence[str] | None = None) -> int:
        if ids is not None and not ids:
            return 0
        total = 0
        for name, entry_ids in self._dead_ids(queue, ids):
            dead = self.keys(name).dead
            if entry_ids is None:
                total += int(self.client.xlen(dead))
                self.client.delete(dead)
            else:
                total += int(self.client.xdel(dead, *entry_ids))
        return total
