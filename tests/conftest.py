"""Every test session registers the ``selftest`` experiment (tests/selftest_experiment.py),
in this process and, through ``INSITU_EXPERIMENT_MODULES``, in any ``insitu`` subprocess."""

import os

os.environ["INSITU_EXPERIMENT_MODULES"] = "tests.selftest_experiment"

import tests.selftest_experiment  # noqa: E402,F401 (registers selftest)
