"""Conformance of a team's own training and serving image ("bring your own container", issue #26) to SageMaker's
container contract, checked offline: the image's ``train`` and ``serve`` programs run as processes in a private
``/opt/ml`` and a network namespace with loopback only, and what they write and answer is judged against the
documented contract (``container_contract``). No Docker engine and no AWS call is involved."""
