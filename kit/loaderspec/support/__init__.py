"""Support shared by the suites and the benchmarks: device kinds, the simulated device, local model folders."""
