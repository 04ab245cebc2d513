"""``--engine local``: the items computed in this process, with the driver's model."""
from __future__ import annotations

from typing import Any, Callable, Iterator

from igkit.domain import Item
from igkit.run.engines import Engine, Job, work


class LocalEngine(Engine):
    """The runner in this process: items stream through it as the driver reads them."""

    name = "local"

    def run(self, job: Job, model: Any, items: Iterator[Item],
            on_item: Callable[[Item | None], None]) -> Iterator[dict[str, Any]]:
        return work(job, model, items, on_item)


ENGINE = LocalEngine
