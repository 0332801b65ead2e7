"""Backends: where chunks run. Both call the one chunk function, ``runner.run_chunk``, so a
result never depends on the backend. ``Backend`` is the interface the launch uses;
``SerialBackend`` runs chunks in the driver process, ``RayBackend`` (``sweeps.ray_backend``)
on a pool of Ray actors.
"""

from __future__ import annotations

from typing import Iterator, Protocol

from insitu.sweeps.engine.chunker import ChunkDone, Chunker, Waiting, chunk_seconds_of
from insitu.errors import InputError
from insitu.sweeps.engine.registry import Experiment
from insitu.sweeps.engine.ray_backend import RayBackend
from insitu.sweeps.engine.runner import run_chunk


class Backend(Protocol):
    """What a launch needs of a backend: ``start``, then ``run`` the chunker's chunks
    (yielding each finished chunk, in completion order, after telling the chunker how long
    it took), then ``close`` (also after an interruption)."""

    name: str
    workers: int  # chunks that run at once; the chunker sizes chunks for them

    def start(self) -> None: ...

    def run(self, chunker: Chunker) -> Iterator[ChunkDone | Waiting]: ...

    def close(self) -> None: ...


class SerialBackend:
    """Runs every chunk in the driver process, one after another."""

    name = "serial"

    def __init__(self, experiment: Experiment):
        self.experiment = experiment
        self.workers = 1
        self.cache: dict = {}

    def start(self) -> None:
        pass

    def run(self, chunker: Chunker) -> Iterator[ChunkDone]:
        while (chunk := chunker.next_chunk()) is not None:
            rows = run_chunk(self.experiment, chunk.groups, self.cache)
            done = ChunkDone(chunk, rows, chunk_seconds_of(rows))
            chunker.observe(done)
            yield done

    def close(self) -> None:
        pass


def make_backend(name: str, experiment: Experiment, *, workers: int | None = None, address: str = "",
                 object_store_mb: int = 80, chunks_per_worker: int = 2,
                 ship_code: bool = True, trial_timeout: float = 0.0) -> Backend:
    """The backend called ``name`` ("serial" or "ray"), not yet started. ``trial_timeout``
    (seconds per trial or seed ensemble, 0: none) applies to the Ray backend; a serial run
    has no second process to stop a trial from."""
    if name == "serial":
        return SerialBackend(experiment)
    if name == "ray":
        return RayBackend(experiment, workers, address, object_store_mb, chunks_per_worker,
                          ship_code, trial_timeout)
    raise InputError(f"unknown backend {name!r} (choose ray or serial)")

