"""Monitoring over AWS: capture windows in S3, the variants' models, the drift monitor's flow, its metrics and
the processing job that runs the same engine."""
