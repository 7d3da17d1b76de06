"""The inference API's service: request validation, endpoint calls, circuit breaker, degradation,
response cache, prediction log."""
