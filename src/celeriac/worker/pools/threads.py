"""threads and solo: members are threads of the supervisor's process (no hard time limits)."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from .base import Pool

if TYPE_CHECKING:
    from ..consumer import Consumer
    from ..supervisor import Supervisor


class ThreadPool(Pool):
    name = "threads"

    def __init__(self, supervisor: Supervisor, width: int = 1) -> None:
        super().__init__(supervisor, width)
        self.threads: list[tuple[threading.Thread, Consumer]] = []

    def start(self, index: int) -> str:
        consumer = self.consumer(index, in_thread=True)
        thread = threading.Thread(target=consumer.run, name=f"ThreadPoolWorker-{index + 1}", daemon=True)
        thread.start()
        self.threads.append((thread, consumer))
        return consumer.consumer_name

    def members(self) -> list[tuple[int, int]]:
        return [(os.getpid(), index) for index in range(len(self.threads))]

    def signal(self, signum: int) -> None:
        # A thread cannot be killed: warm and cold both ask it to stop, and a cold shutdown
        # ends the process, which ends them.
        for _, consumer in self.threads:
            consumer.stop()

    def alive(self) -> bool:
        return any(thread.is_alive() for thread, _ in self.threads)

    def reap(self, block: bool) -> list[tuple[int, int, int]]:
        return []

    def shrink(self, target: int) -> None:
        for _, consumer in self.threads[target:]:
            consumer.stop()
        self.threads = self.threads[:target]


class SoloPool(ThreadPool):
    name = "solo"
