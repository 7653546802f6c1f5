"""The normative specification, shipped so the suites can check requirement coverage."""
