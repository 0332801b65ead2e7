"""Where everything of a store lives (docs/store.md, format 1): its files, its directories,
the names of its parts. Every such name is spelled here and nowhere else."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FORMAT = 1

PART_PREFIX = "part-"
PART_SUFFIX = ".parquet"
TEMP_PREFIX = ".part-"
TEMP_SUFFIX = ".tmp"
LOCK_NAME = ".lock"
MANIFEST_NAME = "manifest.jsonl"
OUTPUTS_NAME = "analysis-outputs.json"
_PART_NAME = re.compile(r"^part-(?P<launch>.+)-(?P<chunk>\d+)\.parquet$")


@dataclass(frozen=True)
class StorePaths:
    """The files and directories of the store at ``root``."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @property
    def store_json(self) -> Path:
        """Format, experiment, declared parameters with their descriptions, modes, metrics."""
        return self.root / "store.json"

    @property
    def spec_json(self) -> Path:
        """The spec in its canonical JSON form (what the store's trials are)."""
        return self.root / "spec.json"

    @property
    def spec_toml(self) -> Path:
        """The same spec as TOML, for people."""
        return self.root / "spec.toml"

    @property
    def launches(self) -> Path:
        """One line per launch start and one per launch end."""
        return self.root / "launches.jsonl"

    @property
    def manifest(self) -> Path:
        """The index of the parts (docs/store.md, "The manifest")."""
        return self.root / MANIFEST_NAME

    @property
    def lock(self) -> Path:
        """Held by the one launch or maintenance command writing the store."""
        return self.root / LOCK_NAME

    @property
    def parts(self) -> Path:
        return self.root / "parts"

    @property
    def quarantine(self) -> Path:
        """Parts ``insitu verify`` moved out of ``parts/``."""
        return self.root / "quarantine"

    @property
    def outputs(self) -> Path:
        """The record of the figures and reports made from the store (docs/store.md)."""
        return self.root / OUTPUTS_NAME

    @property
    def outputs_lock(self) -> Path:
        """Serialises writers of :attr:`outputs` (not the store lock: a figure may be drawn
        while a launch runs)."""
        return self.root / f".{OUTPUTS_NAME}.lock"

    def part_name(self, launch_id: str, chunk_index: int) -> str:
        return f"{PART_PREFIX}{launch_id}-{chunk_index:06d}{PART_SUFFIX}"

    @staticmethod
    def is_part_name(name: str) -> bool:
        return name.startswith(PART_PREFIX) and name.endswith(PART_SUFFIX)

    @staticmethod
    def is_part_temp_name(name: str) -> bool:
        return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)

    @staticmethod
    def launch_of_part(name: str) -> str:
        """The launch id in a part's name (``part-<launch_id>-<chunk>.parquet``)."""
        match = _PART_NAME.match(name)
        return match["launch"] if match else name
