"""Conformance: run the loaderspec suites against any implementation of the utilities.

An :class:`~loaderspec.adapter.Adapter` is the one object through which the
suites reach an implementation; ``--impl``/``LOADERSPEC_IMPL`` picks it.
"""
