"""The test kit: doubles and world builders shared by the tests, `make demo` and `bench/`.

Not product code. No Lambda bundle and no SageMaker code bundle ships it (``stacks.constructs.import_graph``
refuses it at synth; ``tests/infra/test_bundles.py`` checks the built bundles), and no product package imports it
(import contract ``testkit-not-product``; only ``mlops.demo`` may).

Every stand-in here replaces the network, not the behaviour: each is checked against the real thing in
``tests/unit/test_testkit_fidelity.py`` (botocore's service model for the shapes it returns, AWS's sample events
and documented formats for what it sends, the serving container's toolkit for what the endpoint answers).

* ``moto_gaps``: where moto falls short of the AWS behaviour our code relies on (registry life cycle and its
  events, UpdateEndpoint, InvokeEndpoint with data capture, cross-account packages and event envelopes, metrics
  from EMF, alarm evaluation, endpoint percentiles).
* ``inference_doubles``: in-memory stand-ins for the inference service's ports (breaker store, response cache,
  prediction log, metrics, logger, the endpoint).
* ``inference_world``: the inference API's world (schema, fallback model, API Gateway events, moto resources).
* ``serving_world``: the deployer's environment and serving settings as a stack would write them.
"""
