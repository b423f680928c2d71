"""Benchmarks of swarmlog against peers measured in the same run (``make bench``)."""
