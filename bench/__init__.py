"""Benchmarks of flask-psp against minimal baselines (``make bench``); see ``bench/run.py``."""
