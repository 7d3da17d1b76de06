"""What AWS's APIs would refuse in a request the product builds, checked offline.

``shapes``: every request against botocore's service model in full (required members, unknown members, enums,
patterns, min/max lengths and values) — botocore's own ``ParamValidator`` checks only required members, types
and minimums. ``prose``: the rules the API reference and the developer guides state only in words, one row each
with its source. tests/infra/test_requests.py runs both over the requests built from the synthesized cloud
assembly of both topologies; each prose rule has a negative control.
"""
