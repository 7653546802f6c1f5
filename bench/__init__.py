"""Benchmarks of the post-loading path (pytest-benchmark), shipped for `loaderspec bench`."""
