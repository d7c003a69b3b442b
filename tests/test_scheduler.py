"""The fair scheduler: round-robin over clients, newest frame only, interactive before background work."""

from __future__ import annotations

import asyncio
import threading

from facegate.service.scheduler import BACKGROUND, FairScheduler, Slot


def test_interactive_work_goes_before_queued_background_work():
    order: list[str] = []
    gate = threading.Event()

    def job(name: str) -> str:
        if name == "first":
            gate.wait(5)
        order.append(name)
        return name

    async def main() -> None:
        scheduler = FairScheduler(threads=1)
        await scheduler.start()
        try:
            first = asyncio.create_task(scheduler.run(job, "first", priority=BACKGROUND))
            await asyncio.sleep(0.05)  # the one worker is busy with it
            cameras = [asyncio.create_task(scheduler.run(job, f"cam{i}", priority=BACKGROUND)) for i in range(3)]
            await asyncio.sleep(0.05)
            person = asyncio.create_task(scheduler.run(job, "person"))
            await asyncio.sleep(0.05)
            assert scheduler.depth == 4
            gate.set()
            assert await person == "person"
            await asyncio.gather(first, *cameras)
        finally:
            await scheduler.stop()

    asyncio.run(main())
    assert order == ["first", "person", "cam0", "cam1", "cam2"]


def test_a_slot_keeps_only_its_newest_job_and_clients_take_turns():
    done: list[tuple[str, int]] = []
    gate = threading.Event()

    async def main() -> None:
        scheduler = FairScheduler(threads=1)
        await scheduler.start()
        finished = asyncio.Event()

        async def deliver(payload, result, error) -> None:
            done.append(payload)
            if len(done) == 4:
                finished.set()

        def process(payload):
            gate.wait(5)
            return payload

        fast, slow = Slot(process=process, deliver=deliver), Slot(process=process, deliver=deliver)
        try:
            await scheduler.offer(fast, ("fast", 0))
            await asyncio.sleep(0.05)  # running; the next ones wait
            for n in range(1, 6):
                await scheduler.offer(fast, ("fast", n))  # each replaces the previous: only 5 runs
            await scheduler.offer(slow, ("slow", 1))
            gate.set()
            await asyncio.sleep(0.2)
            await scheduler.offer(fast, ("fast", 6))
            await asyncio.wait_for(finished.wait(), 5)
        finally:
            await scheduler.stop()
        assert fast.dropped == 4

    asyncio.run(main())
    # the busy client's newest job waits for its running one, and goes after the client that queued meanwhile
    assert done == [("fast", 0), ("slow", 1), ("fast", 5), ("fast", 6)]


def test_one_client_never_runs_two_jobs_at_once():
    running, overlaps, finished = [0], [], []

    def process(n: int) -> int:
        running[0] += 1
        overlaps.append(running[0])
        threading.Event().wait(0.01)
        running[0] -= 1
        return n

    async def main() -> None:
        scheduler = FairScheduler(threads=2)
        await scheduler.start()

        async def deliver(payload, result, error) -> None:
            finished.append(result)

        slot = Slot(process=process, deliver=deliver)
        try:
            for n in range(20):
                await scheduler.offer(slot, n)
                await asyncio.sleep(0.003)
            while not finished or finished[-1] != 19:
                await asyncio.sleep(0.01)
        finally:
            await scheduler.stop()

    asyncio.run(main())
    assert max(overlaps) == 1 and finished == sorted(finished)
