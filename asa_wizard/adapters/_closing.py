"""Ending a run's sessions on many servers."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

CLOSE_AT_ONCE = 8  # sessions closed side by side: each close is a round trip to its own server


def close_each(sessions: Iterable[T], close_one: Callable[[T], None]) -> None:
    """`close_one` for every session, up to CLOSE_AT_ONCE at a time: a run on hundreds of servers would otherwise
    wait for each server's answer in turn. `close_one` is best effort and raises nothing."""
    items = list(sessions)
    if len(items) <= 1:
        for item in items:
            close_one(item)
        return
    with ThreadPoolExecutor(max_workers=min(CLOSE_AT_ONCE, len(items)), thread_name_prefix="close") as pool:
        list(pool.map(close_one, items))
