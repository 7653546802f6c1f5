"""Test-support code shared by the loaderspec test suites (not part of the library)."""
