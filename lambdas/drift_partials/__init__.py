"""Drift partial results: each captured object reduced when it lands, merged by the drift run (docs/MONITORING.md)."""
