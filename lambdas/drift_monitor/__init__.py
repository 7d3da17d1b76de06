"""The drift monitor: scheduled drift and ground-truth quality over captured traffic (docs/MONITORING.md)."""
