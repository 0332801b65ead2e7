#!/bin/sh
# Every paper spec and the systematic study, each into results/<spec name> (the default of
# `insitu run`), with figures and report. Long on a laptop (each spec's file states its run
# time on 2 cores); pass --address HOST:PORT to use a Ray cluster.
set -eu
INSITU=${INSITU:-.venv/bin/insitu}
for spec in paper-fig2 paper-fig3 paper-fig4 errors-vs-depth; do
    echo "== sweeps/specs/$spec.toml -> results/$spec"
    "$INSITU" run "sweeps/specs/$spec.toml" "$@"
    "$INSITU" figures "results/$spec" >/dev/null
    "$INSITU" report "results/$spec" >/dev/null
done
