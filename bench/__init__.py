"""Benchmarks: figures are ratios to a floor measured in the same run (see bench/README.md)."""
