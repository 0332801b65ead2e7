#!/bin/sh
# Every paper spec and the systematic study, each into results/<spec name>, with figures
# and report. Long on a laptop (hours); pass --address HOST:PORT to use a Ray cluster.
set -eu
INSITU=${INSITU:-.venv/bin/insitu}
for spec in paper-fig2 paper-fig3 paper-fig4 errors-vs-depth; do
    echo "== $spec"
    "$INSITU" run "sweeps/specs/$spec.toml" --out "results/$spec" "$@"
    "$INSITU" figures "results/$spec"
    "$INSITU" report "results/$spec"
done
