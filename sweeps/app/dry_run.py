"""The dry run of a launch (``insitu run --dry-run``): the trial count and a time estimate
from one pilot unit run here, in place of executing the plan; nothing is written."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Sequence, TextIO

from insitu.sweeps.app.progress import format_duration
from insitu.sweeps.engine.chunker import seed_groups, uses_ensembles
from insitu.sweeps.engine.registry import Experiment
from insitu.sweeps.engine.runner import run_group, run_one
from insitu.sweeps.engine.spec import Spec
from insitu.sweeps.engine.trials import Trial

if TYPE_CHECKING:
    from insitu.sweeps.app.options import LaunchOptions, Pool


def dry_run(spec: Spec, experiment: Experiment, trials: Sequence[Trial],
            pending: Sequence[Trial], pool: Pool, options: LaunchOptions,
            stdout: TextIO) -> None:
    """Print the trial count and an estimate from a pilot run here; write nothing.

    The pilot is what one worker runs as a unit: one trial, or, when the seeds of a grid
    point run as one device ensemble, the first such group of seeds. The estimate is
    ``t_pilot * ceil(units / pool)``: units are handed out whole, ``pool`` at a time.
    """
    print(f"{spec.name}: {len(trials)} trials ({len(pending)} pending) of experiment "
          f"{experiment.name} v{experiment.version}", file=stdout)
    if not pending or not options.pilot:
        return
    grouped = uses_ensembles(experiment, spec)
    units = seed_groups(pending, experiment.max_group) if grouped else [[t] for t in pending]
    pilot = units[0]
    start = time.perf_counter()
    rows = run_one(experiment, pilot[0], {}) if len(pilot) == 1 else run_group(experiment, pilot, {})
    seconds = time.perf_counter() - start
    failed = next((r for r in rows if r["status"] != "ok"), None)
    status = "" if failed is None else f" (the pilot failed: {failed['error']})"
    if len(pilot) > 1:
        what, unit = f"pilot: one device ensemble of {len(pilot)} seeds", "ensemble"
    else:
        what, unit = "pilot trial", "trial"
    pool, where = pool.for_estimate()
    estimate = seconds * math.ceil(len(units) / pool)
    print(f"{what}: {seconds:.3g} s{status}; {len(units)} {unit}"
          f"{'s' if len(units) != 1 else ''} to run: estimated {format_duration(estimate)} "
          f"{where}, plus the start of the pool", file=stdout)
