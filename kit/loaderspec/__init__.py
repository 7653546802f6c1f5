"""loaderspec: the conformance kit for vLLM's model-loader utilities.

- :mod:`loaderspec.adapter`: the injection point (the :class:`~loaderspec.adapter.Adapter` base);
- :mod:`loaderspec.adapters`: the shipped adapters and their expected-failure files;
- :mod:`loaderspec.support`: devices and local model folders shared by the suites and benchmarks;
- :mod:`loaderspec.conform`: the conformance runner and its report;
- :mod:`loaderspec.cli`: the ``loaderspec`` command.

The reference implementation is the separate package ``loaderspec_reference``; the suites are
``loaderspec_suites``; the benchmarks ``loaderspec_bench``.
"""

__version__ = "0.1.0"

SPEC_VERSION = "0.2.0"
"""Version of the normative specification in ``spec/`` this release checks."""
