# insitu: the commands the README promises. Everything runs from a local .venv.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv test test-all study paper bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# Fast suite (slow tests excluded) in two processes (pytest-xdist); Ray tests run inside a
# loopback-only network namespace when the machine allows one.
test: $(STAMP)
	sh scripts/netns.sh $(PY) -m pytest -q -n 2 -m "not slow"

test-all: $(STAMP)
	sh scripts/netns.sh $(PY) -m pytest -q -n 2

# The main job: quick study on an embedded local Ray -> results/quick, results/quick-gradient
study: $(STAMP)
	sh scripts/netns.sh sh scripts/study.sh

# Every paper spec and the systematic study (long on a laptop; see README for clusters)
paper: $(STAMP)
	sh scripts/netns.sh sh scripts/paper.sh

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) benchmarks/mesh.py --compare --threads 1
	$(PY) benchmarks/gradients.py --compare
	$(PY) benchmarks/control.py --threads 1
	sh scripts/netns.sh $(PY) benchmarks/sweep.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
