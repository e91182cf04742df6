"""Benchmarks on the lab VM (see run.py)."""
