"""loaderspec_reference: the reference implementation of vLLM 0.9.2's model-loader utilities.

The public API under test lives in :mod:`loaderspec_reference.utils` (diffable against
vLLM's ``vllm/model_executor/model_loader/utils.py``); the other modules are the minimal,
real collaborators it imports (configs, registry, layers, ...), each named after the vLLM
module a reader would look for. This package imports nothing of the conformance kit, the
suites or the benchmarks.
"""

__version__ = "0.1.0"
