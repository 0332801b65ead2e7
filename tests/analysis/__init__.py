"""Tests of the analysis package, against synthetic stores written per docs/store.md."""
