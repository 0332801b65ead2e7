#!/bin/sh
# The main job: run the quick study on an embedded local Ray and write the Parquet stores,
# the figures and one HTML report per store under results/quick/.
#   usage: sh scripts/study.sh [SPEC_DIR_OR_SPECS...]   (default: the quick specs)
set -eu
INSITU=${INSITU:-.venv/bin/insitu}
OUT=${OUT:-results/quick}
run_one() {
    spec=$1 store=$2
    echo "== $spec -> $store"
    "$INSITU" run "$spec" --out "$store"
    "$INSITU" figures "$store"
    "$INSITU" report "$store"
}
run_one sweeps/specs/quick.toml "$OUT/classify"
run_one sweeps/specs/quick-gradient.toml "$OUT/gradient"
echo
echo "stores:  $OUT/classify  $OUT/gradient   (Parquet parts under parts/)"
echo "figures: $OUT/classify/figures  $OUT/gradient/figures"
echo "reports: $OUT/classify/report.html  $OUT/gradient/report.html"
