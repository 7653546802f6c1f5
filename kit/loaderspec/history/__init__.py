"""The conformance history: every vLLM release's ``loaderspec conform`` report, one page.

``python -m loaderspec.history build [VERSION...]`` (or ``loaderspec history build``) installs
each release into its own throw-away venv (:mod:`.install`), runs the conformance kit there
and writes ``docs/reports/history/vllm-X.Y.Z.json`` (:mod:`.build`); ``... render`` turns
those reports into ``docs/history.md`` and its grid picture (:mod:`.render`, :mod:`.svg`).
The releases tried are in :mod:`.releases`.
"""
