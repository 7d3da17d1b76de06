"""Serving: endpoint state, deployment plans and their execution, golden-payload health checks, batch scoring."""
