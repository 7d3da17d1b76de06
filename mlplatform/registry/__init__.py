"""Model registry: the deployment ledger, the promotion gate's rules and actions, package events."""
