"""Progress shown to a person: a tqdm bar on a terminal, plain lines otherwise.

Under Slurm, in a log file or behind a pipe there is no terminal to redraw a bar on, so a
launch prints one plain line about every ``seconds`` instead (done / total, errors, rate,
ETA), and one at the end. The lines keep coming while no chunk finishes (a long seed
ensemble): the backend reports every few seconds what is running, and the workers' own
account of how far they are (an epoch at a time) counts towards the rate and the ETA.
"""

from __future__ import annotations

import time
from typing import TextIO

from insitu.sweeps.store.maintenance import format_duration


class Progress:
    """Progress of ``total`` trials on ``stream``: a bar, plain lines, or nothing.

    ``bar``: None shows the tqdm bar only when ``stream`` is a terminal; ``seconds``: the
    interval of the plain lines written when there is no bar (None: no lines).
    """

    def __init__(self, total: int, stream: TextIO, bar: bool | None = None,
                 seconds: float | None = 30.0, clock=time.monotonic):
        self.total, self.stream, self.seconds, self.clock = total, stream, seconds, clock
        self.done = self.errors = 0
        if bar is None:
            bar = _isatty(stream)
        self._bar = None
        if bar:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="trial", file=stream, dynamic_ncols=True,
                             smoothing=0.1)
        self._start = self._last = clock()
        self.partial = 0.0  # trials of the running chunks done, by the workers' account
        self._waiting = ""

    def update(self, done: int, errors: int = 0) -> None:
        """``done`` more trials finished, ``errors`` of them with an error row."""
        self.done += done
        self.errors += errors
        self.partial, self._waiting = 0.0, ""
        if self._bar is not None:
            self._bar.update(done)
            if self.errors:
                self._bar.set_postfix(errors=self.errors, refresh=False)
            return
        now = self.clock()
        if self.seconds is not None and now - self._last >= self.seconds:
            self._last = now
            self._line(now)

    def waiting(self, event) -> None:
        """No chunk finished lately (a :class:`insitu.sweeps.engine.chunker.Waiting`): keep
        the plain lines coming, with what runs and the workers' partial progress."""
        self.partial, self._waiting = float(event.partial), event.text()
        if self._bar is not None:
            self._bar.set_postfix_str(self._waiting, refresh=True)
            return
        now = self.clock()
        if self.seconds is not None and now - self._last >= self.seconds:
            self._last = now
            self._line(now)

    def close(self, final: bool = True) -> None:
        """End the bar; without one, a last line (unless nothing was ever printed)."""
        if self._bar is not None:
            self._bar.close()
        elif final and self.seconds is not None and self._last != self._start:
            self._line(self.clock())

    def _line(self, now: float) -> None:
        elapsed = now - self._start
        done = min(self.total, self.done + self.partial)
        rate = done / elapsed if elapsed > 0 else 0.0
        left = self.total - done
        eta = format_duration(left / rate) if rate > 0 else "unknown"
        running = f" (+{self.partial:.1f} running)" if self.partial >= 0.05 else ""
        print(f"insitu: {self.done}/{self.total} trials done{running}, {self.errors} errors, "
              f"{rate:.3g} trials/s, elapsed {format_duration(elapsed)}, ETA {eta}"
              + (f"; {self._waiting}" if self._waiting else ""), file=self.stream, flush=True)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
