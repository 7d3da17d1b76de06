"""The drift engine, pure computation (no AWS): the baseline format, the capture record format, chunked
capture parsing, drift statistics, the ground-truth join, one drift run over line sources and its HTML
report. The drift Lambda, ``mlops drift`` and the SageMaker Processing job run the same code; only the line
sources they hand it differ (docs/DRIFT.md, docs/ARCHITECTURE.md)."""
