"""loaderspec: the reference implementation of vLLM 0.9.2's model-loader utilities.

The public API under test lives in :mod:`loaderspec.utils`; the other modules are
the minimal, real collaborators it imports (configs, registry, layers, ...), each
named after the vLLM module a reader would look for.
"""

__version__ = "0.1.0"

SPEC_VERSION = "0.1.0"
"""Version of the normative specification in ``spec/`` this release implements."""

UPSTREAM_VERSION = "0.9.2"
"""The vLLM release whose ``model_executor/model_loader/utils.py`` the spec describes."""
