"""Progress bars for training loops: tqdm when it is installed, else one line on stderr.

tqdm is not a dependency of graphc: without it, :class:`PlainBar` rewrites a single line
(``\\r``) on stderr, at most ten times a second, and ends it when the loop ends.
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager, nullcontext
from typing import ContextManager, Iterator


class PlainBar:
    """``name: 37/100 steps  loss=0.1234`` on one line of stderr, redrawn in place."""

    INTERVAL = 0.1  # seconds between redraws; the first and the last state are always drawn

    def __init__(self, total: int, desc: str, unit: str) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.done, self.postfix = 0, ""
        self._drawn_at, self._drawn_done = -1.0, -1
        self.closed = False

    def update(self, **postfix: float) -> None:
        """One more step done; ``postfix`` numbers (a loss, an accuracy) shown after the count."""
        self.done += 1
        self.postfix = _format(postfix)
        now = time.monotonic()
        if now - self._drawn_at >= self.INTERVAL or self.done == self.total:
            self._drawn_at = now
            self._draw()

    def close(self) -> None:
        """End the line (once: ``train`` closes its bar before it moves the params, the block
        closes it again)."""
        if self.closed:
            return
        self.closed = True
        if self._drawn_done != self.done:
            self._draw()
        sys.stderr.write("\n")
        sys.stderr.flush()

    def _draw(self) -> None:
        self._drawn_done = self.done
        sys.stderr.write(f"\r{self.desc}: {self.done}/{self.total} {self.unit}  {self.postfix}".rstrip())
        sys.stderr.flush()


class TqdmBar:
    """The same interface on a ``tqdm`` bar."""

    def __init__(self, tqdm_class, total: int, desc: str, unit: str) -> None:
        self._bar = tqdm_class(total=total, desc=desc, unit=f" {unit}", leave=True)

    def update(self, **postfix: float) -> None:
        self._bar.set_postfix_str(_format(postfix), refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()


def progress_bar(total: int, desc: str, unit: str = "steps", enabled: bool = True
                 ) -> ContextManager[PlainBar | TqdmBar | None]:
    """A bar over ``total`` steps, closed when the block ends (even by an exception); None
    when not ``enabled``, so a loop pays one ``is None`` test per step for no progress (and
    the block nothing: a ``train`` call is 45 us of Python)."""
    return _bar(total, desc, unit) if enabled else nullcontext()


@contextmanager
def _bar(total: int, desc: str, unit: str) -> Iterator[PlainBar | TqdmBar]:
    try:
        from tqdm.auto import tqdm
    except ImportError:
        bar: PlainBar | TqdmBar = PlainBar(total, desc, unit)
    else:
        bar = TqdmBar(tqdm, total, desc, unit)
    try:
        yield bar
    finally:
        bar.close()


def _format(postfix: dict[str, float]) -> str:
    return "  ".join(f"{name}={value:.4g}" for name, value in postfix.items())
