"""Progress shown to a person: the tqdm bar of a launch and human-readable durations."""

from __future__ import annotations

from typing import TextIO


def progress_bar(total: int, show: bool | None, stream: TextIO):
    """A tqdm bar (rate and ETA) on ``stream``; by default only when it is a terminal."""
    from tqdm import tqdm

    if show is None:
        show = stream.isatty()
    return tqdm(total=total, unit="trial", file=stream, disable=not show, dynamic_ncols=True,
                smoothing=0.1)


def format_duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
