"""Performance benchmarks against baselines (issue #7). Run ``python benchmarks/run.py [--quick]``."""
