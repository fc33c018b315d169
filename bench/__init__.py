"""Benchmarks: each prints its figure and the baseline measured in the same run. Never part of the tests."""
