#!/bin/sh
# The main job: run the quick study on an embedded local Ray and write the Parquet stores,
# the figures and one HTML report per store. Every store goes where `insitu run SPEC` puts
# it by default, results/<spec name>, so that the same command run by hand resumes it.
#   usage: sh scripts/study.sh [OPTIONS FOR insitu run...]
set -eu
INSITU=${INSITU:-.venv/bin/insitu}
for spec in quick quick-gradient; do
    store=results/$spec
    echo "== sweeps/specs/$spec.toml -> $store"
    "$INSITU" run "sweeps/specs/$spec.toml" "$@"
    "$INSITU" figures "$store" >/dev/null
    "$INSITU" report "$store" >/dev/null
done
echo
echo "stores:  results/quick  results/quick-gradient   (Parquet parts under parts/)"
echo "figures: results/quick/figures  results/quick-gradient/figures"
echo "reports: results/quick/report.html  results/quick-gradient/report.html"
