"""How accurate must calibration be for an offline method to match in situ training?

Reads a ``classify`` store with a ``calibration_error`` axis (sweeps/specs/baselines*.toml)
and prints, per splitting error:

* the mean test accuracy of every mode per calibration error, with its 95 % Student-t
  interval over seeds;
* per offline method (``calibrated``, ``corrected``, ``pat``) its *calibration tolerance*:
  the calibration error at which its mean paired gap to ``insitu`` (same trial: same chip,
  initial phases and minibatch order) first falls ``--drop`` below zero, interpolated
  linearly between grid values, with a 95 % bootstrap interval over seeds (seeds resampled
  jointly for every calibration level and method). ``< c0`` means the method is already
  more than ``--drop`` below in situ with perfect calibration; ``> c_max`` that it never
  falls that far on the grid.

usage: python scripts/baselines_tolerance.py STORE [--drop 0.02] [--boot 2000] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from insitu.analysis.load import load
from insitu.analysis.summary import interval

OFFLINE = ("calibrated", "corrected", "pat")


def tolerance(levels: np.ndarray, gaps: np.ndarray, drop: float) -> float:
    """First crossing of ``gap = -drop`` along ``levels`` (linear interpolation).

    ``-inf``: below already at the first level; ``inf``: never below on the grid.
    """
    below = gaps < -drop
    if not below.any():
        return np.inf
    i = int(np.argmax(below))
    if i == 0:
        return -np.inf
    g0, g1 = gaps[i - 1], gaps[i]
    return float(levels[i - 1] + (levels[i] - levels[i - 1]) * (-drop - g0) / (g1 - g0))


def _text(value: float, levels: np.ndarray) -> str:
    if value == np.inf:
        return f"> {levels[-1]:g}"
    if value == -np.inf:
        return f"< {levels[0]:g}"
    return f"{value:.3f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store")
    parser.add_argument("--drop", type=float, default=0.02, help="accuracy drop below in situ (default 0.02)")
    parser.add_argument("--boot", type=int, default=2000, help="bootstrap resamples over seeds")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap generator seed")
    args = parser.parse_args(argv)

    df = load(args.store, columns=["bs_error", "calibration_error", "mode", "seed", "test_accuracy"])
    modes = [m for m in ("digital", "calibrated", "corrected", "pat", "spsa", "insitu", "analog")
             if m in set(df["mode"])]
    rng = np.random.default_rng(args.seed)
    for bs in sorted(df["bs_error"].unique()):
        part = df[df["bs_error"] == bs]
        levels = np.sort(part["calibration_error"].unique())  # a partial store may lack some
        acc = part.pivot_table(index=["calibration_error", "seed"], columns="mode", values="test_accuracy")
        seeds = np.sort(part["seed"].unique())
        print(f"\nsplitting error {bs:g} rad: mean test accuracy (95 % t-interval over {len(seeds)} seeds)")
        print("calibration_error | " + " | ".join(modes))
        for c in levels:
            cells = []
            for m in modes:
                ci = interval(acc.loc[c][m].to_numpy())
                cells.append(f"{ci['mean']:.3f} ({ci['ci_low']:.3f}, {ci['ci_high']:.3f})")
            print(f"{c:g} | " + " | ".join(cells))
        # paired gaps (mode - insitu) as an array (method, level, seed)
        gaps = np.stack([np.stack([(acc.loc[c][m] - acc.loc[c]["insitu"]).reindex(seeds).to_numpy()
                                   for c in levels]) for m in OFFLINE if m in modes])
        names = [m for m in OFFLINE if m in modes]
        point = [tolerance(levels, g.mean(axis=-1), args.drop) for g in gaps]
        draws = rng.integers(0, len(seeds), (args.boot, len(seeds)))
        boot = np.array([[tolerance(levels, g[:, d].mean(axis=-1), args.drop) for g in gaps] for d in draws])
        print(f"calibration tolerance (mean paired gap to insitu falls {args.drop:g} below 0; "
              f"95 % bootstrap interval over seeds, {args.boot} resamples):")
        for j, m in enumerate(names):
            low, high = np.percentile(boot[:, j], [2.5, 97.5], method="inverted_cdf")
            gap0 = interval(gaps[j, 0])
            print(f"  {m}: {_text(point[j], levels)} ({_text(low, levels)}, {_text(high, levels)}); "
                  f"gap at {levels[0]:g}: {gap0['mean']:+.3f} ({gap0['ci_low']:+.3f}, {gap0['ci_high']:+.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
