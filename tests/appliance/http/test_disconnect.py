"""``_unless_disconnected``: the work is cancelled when the client leaves, and only then."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from appliance.http.app import ClientDisconnected, _unless_disconnected


class Client:
    """An ASGI ``receive`` whose messages the test hands over one at a time."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.waiting = 0

    async def receive(self) -> dict[str, Any]:
        self.waiting += 1
        try:
            return await self.messages.get()
        finally:
            self.waiting -= 1


def test_disconnect_cancels_the_work() -> None:
    asyncio.run(_disconnect_cancels_the_work())


async def _disconnect_cancels_the_work() -> None:
    client = Client()
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def work() -> str:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "done"

    request = asyncio.ensure_future(_unless_disconnected(client.receive, work()))
    await started.wait()
    client.messages.put_nowait({"type": "http.request", "body": b"", "more_body": False})
    await asyncio.sleep(0.01)
    assert not request.done()  # another message is not a disconnect: it keeps listening
    client.messages.put_nowait({"type": "http.disconnect"})
    with pytest.raises(ClientDisconnected):
        await asyncio.wait_for(request, 5)
    assert cancelled.is_set()


def test_finished_work_stops_listening() -> None:
    asyncio.run(_finished_work_stops_listening())


async def _finished_work_stops_listening() -> None:
    client = Client()

    async def work() -> str:
        await asyncio.sleep(0)
        return "done"

    assert await _unless_disconnected(client.receive, work()) == "done"
    await asyncio.sleep(0)  # the watcher's cancellation runs at the next turn of the loop
    assert client.waiting == 0  # the pending receive() was closed, not left behind
    client.messages.put_nowait({"type": "http.disconnect"})
    await asyncio.sleep(0.01)  # a disconnect after the answer cancels nothing


def test_someone_elses_cancellation_goes_on_up() -> None:
    asyncio.run(_someone_elses_cancellation_goes_on_up())


async def _someone_elses_cancellation_goes_on_up() -> None:
    client = Client()

    async def work() -> str:
        await asyncio.sleep(60)
        return "done"

    request = asyncio.ensure_future(_unless_disconnected(client.receive, work()))
    await asyncio.sleep(0.01)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    assert client.waiting == 0
