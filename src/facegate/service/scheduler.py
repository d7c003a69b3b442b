"""Fair scheduling of CPU-bound work: clients take turns, and each keeps only its newest frame.

Every client (a WebSocket stream, or one HTTP request) owns a :class:`Slot` holding at most
one pending job, and runs one job at a time (a stream's frames are tracked in order). A
stream that sends a frame while its previous one still waits replaces it (the older one is
dropped and counted), so latency stays bounded however fast frames come. Slots with work
wait in one FIFO (a running slot queues again after its answer); ``threads`` workers take the next slot, run its
job in a thread pool (the event loop never runs model code) and hand the result back.
Because a slot is queued at most once, the FIFO is round-robin over clients: a client
sending 100 frames a second gets no more turns than one sending 5.

Three priorities: interactive clients (HTTP requests, browser streams) are served before
background work (cameras), and both before batch work (video files); within a priority,
turns are round-robin. A busy camera can
therefore not slow down a person at the browser; cameras share what is left, each
dropping its stale frames.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

Deliver = Callable[[Any, Any, BaseException | None], Awaitable[None]]
INTERACTIVE, BACKGROUND, BATCH = 0, 1, 2  # HTTP and browser streams; cameras; video files


@dataclass
class Slot:
    """One client's place in the schedule: its newest pending job and how to answer it."""

    process: Callable[[Any], Any]  # runs in a worker thread
    deliver: Deliver  # runs on the event loop with (payload, result, error)
    pending: Any = None
    queued: bool = False
    closed: bool = False
    dropped: int = 0
    priority: int = INTERACTIVE
    running: bool = False  # one job of a slot at a time: a client's frames are processed in order
    _has_pending: bool = field(default=False, repr=False)


class FairScheduler:
    """Runs slots' jobs on ``threads`` worker threads, one slot at a time in arrival order."""

    def __init__(self, threads: int = 1, on_drop: Callable[[], None] | None = None) -> None:
        self.threads = threads
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="facegate-infer")
        self._ready: tuple[deque[Slot], ...] = (deque(), deque(), deque())  # by priority
        self._wakeup: asyncio.Condition | None = None
        self._workers: list[asyncio.Task] = []
        self.on_drop = on_drop  # called for every dropped frame (metrics)
        self.running = 0

    @property
    def depth(self) -> int:
        """Clients waiting for a turn (the queue the metrics report)."""
        return sum(len(q) for q in self._ready)

    async def start(self) -> None:
        self._wakeup = asyncio.Condition()
        self._workers = [asyncio.create_task(self._work(), name=f"facegate-worker-{i}") for i in range(self.threads)]

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def offer(self, slot: Slot, payload: Any) -> bool:
        """Give a slot a new job; returns False when it replaced an older, unprocessed one."""
        replaced = slot._has_pending
        if replaced:
            slot.dropped += 1
            if self.on_drop:
                self.on_drop()
        slot.pending, slot._has_pending = payload, True
        if not slot.running:  # a running slot is queued again once its job is delivered
            await self._enqueue(slot)
        return not replaced

    async def _enqueue(self, slot: Slot) -> None:
        if slot.queued:
            return
        slot.queued = True
        async with self._wakeup:
            self._ready[slot.priority].append(slot)
            self._wakeup.notify()

    async def run(self, fn: Callable[..., Any], *args: Any, priority: int = INTERACTIVE) -> Any:
        """Run one job for a one-off client (an HTTP request, a camera's frame) in its fair turn; returns its result."""
        future: asyncio.Future = asyncio.get_running_loop().create_future()

        async def deliver(_payload, result, error) -> None:
            if not future.done():
                future.set_exception(error) if error else future.set_result(result)

        slot = Slot(process=lambda a: fn(*a), deliver=deliver, priority=priority)
        await self.offer(slot, args)
        try:
            return await future
        finally:
            slot.closed = True

    async def _next(self) -> Slot:
        async with self._wakeup:
            await self._wakeup.wait_for(lambda: any(self._ready))
            return next(q for q in self._ready if q).popleft()

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            slot = await self._next()
            slot.queued = False
            if slot.closed or not slot._has_pending:
                continue
            payload, slot.pending, slot._has_pending = slot.pending, None, False
            self.running += 1
            slot.running = True
            try:
                result, error = await loop.run_in_executor(self._executor, slot.process, payload), None
            except Exception as exc:  # the client hears about it; the worker goes on
                result, error = None, exc
            finally:
                self.running -= 1
            try:
                await slot.deliver(payload, result, error)
            except Exception:
                log.exception("delivering a result failed")
            finally:
                slot.running = False
                if slot._has_pending and not slot.closed:  # a newer job came while this one ran
                    await self._enqueue(slot)
