"""Check a `loaderspec conform --junit-xml` file against the JSON report of the same run: valid
under Jenkins' junit-10.xsd (meta_tests/schemas/), and read by junitparser (a JUnit consumer from
PyPI) with the counts the report's verdicts give. CI runs it on every conformance target.

    python3 .ci/check-junit.py REPORT.json REPORT.xml
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import junitparser
import xmlschema

SCHEMA = Path(__file__).resolve().parents[1] / "meta_tests" / "schemas" / "junit-10.xsd"
KIND = {"failed": "Failure", "unexpected pass": "Failure", "adapter error": "Error"}
SKIPPED = ("not provided", "unchecked", "inconclusive", "not selected")


def main(report_path: str, junit_path: str) -> int:
    xmlschema.XMLSchema(str(SCHEMA)).validate(junit_path)
    report = json.loads(Path(report_path).read_text(encoding="utf-8"))
    expected = Counter(
        KIND.get(r["verdict"], "Skipped" if r["verdict"] in SKIPPED else "passed") for r in report["requirements"]
    )
    cases = [case for suite in junitparser.JUnitXml.fromfile(junit_path) for case in suite]
    read = Counter(type(case.result[0]).__name__ if case.result else "passed" for case in cases)
    if read != expected:
        print(f"check-junit: {junit_path} reads as {dict(read)}, the report's verdicts give {dict(expected)}")
        return 1
    print(f"check-junit: {junit_path}: schema-valid; junitparser reads {len(cases)} cases, {dict(read)}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
