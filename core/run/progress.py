"""A dependency-free progress bar for long loops (folders, data sets, training)."""
from __future__ import annotations

import contextlib
import contextvars
import sys
import time
from typing import Callable, Iterable, Iterator, TextIO, TypeVar

from igkit.outputs.printable import printable

T = TypeVar("T")


class Progress:
    """Wraps an iterable and redraws one status line on stderr.

    Silent when ``enabled`` is false, so library calls stay quiet by default and the
    CLI turns it on.
    """

    def __init__(self, iterable: Iterable[T], total: int | None = None, desc: str = "",
                 enabled: bool = True, stream: TextIO | None = None, width: int = 28):
        self.iterable = iterable
        self.total = total if total is not None else _len_or_none(iterable)
        self.desc = desc
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.width = width
        self.postfix = ""
        self._count = 0
        self._start = time.perf_counter()
        self._last_draw = 0.0

    def __iter__(self) -> Iterator[T]:
        for item in self.iterable:
            yield item
            self._count += 1
            self._draw()
        self._draw(final=True)

    def set_postfix(self, text: str) -> None:
        """Show a short status (a loss, a file name) after the bar."""
        self.postfix = text

    def advance(self, count: int = 1, postfix: str | None = None) -> None:
        """Count work done outside iteration (items written by a runner); redraws at most 10×/s."""
        self._count += count
        if postfix is not None:
            self.postfix = postfix
        self._draw()

    def refresh(self, postfix: str) -> None:
        """New status text without new items (passes inside a long item)."""
        self.postfix = postfix
        self._draw()

    def close(self) -> None:
        self._draw(final=True)

    def _draw(self, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not final and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        elapsed = now - self._start
        if self.total:
            done = min(self._count / self.total, 1.0)
            filled = int(self.width * done)
            bar = "#" * filled + "-" * (self.width - filled)
            eta = elapsed / self._count * (self.total - self._count) if self._count else 0.0
            line = f"{self.desc} [{bar}] {self._count}/{self.total} {elapsed:.0f}s<{eta:.0f}s"
        else:
            line = f"{self.desc} {self._count} {elapsed:.0f}s"
        if self.postfix:
            line += f" {printable(self.postfix, 80)}"
        self.stream.write("\r" + line)
        if final:
            self.stream.write("\n")
        self.stream.flush()


_pass_listener: contextvars.ContextVar[Callable[[int], None] | None] = contextvars.ContextVar(
    "igkit_pass_listener", default=None)


@contextlib.contextmanager
def on_pass(listener: Callable[[int], None]) -> Iterator[None]:
    """Call ``listener(path points)`` after every forward/backward pass inside the block, so
    progress moves within one long item (a large image, a 500-word context)."""
    token = _pass_listener.set(listener)
    try:
        yield
    finally:
        _pass_listener.reset(token)


def report_pass(points: int) -> None:
    """Called by the path engine after each pass."""
    listener = _pass_listener.get()
    if listener is not None:
        listener(points)


def progress(iterable: Iterable[T], total: int | None = None, desc: str = "",
             enabled: bool = True) -> Progress:
    """Shorthand for :class:`Progress`."""
    return Progress(iterable, total=total, desc=desc, enabled=enabled)


def _len_or_none(iterable: Iterable) -> int | None:
    try:
        return len(iterable)  # type: ignore[arg-type]
    except TypeError:
        return None
