"""Benchmarks of the platform (``make bench``); figures go to docs/benchmarks.md."""
