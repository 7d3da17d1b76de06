"""The third-party actions the generated workflow uses, each pinned by the full commit SHA of a release tag.

Read from each repository's tags (`git show-ref --tags` on a fetched copy, 2026-12-06): a tag can be moved, a
commit cannot. The version after the pin is written as a comment so a reader (and Dependabot) sees it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PinnedAction:
    repository: str
    sha: str
    version: str

    @property
    def uses(self) -> str:
        return f"{self.repository}@{self.sha}"


CHECKOUT = PinnedAction("actions/checkout", "3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1")
SETUP_PYTHON = PinnedAction("actions/setup-python", "5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0")
CONFIGURE_AWS_CREDENTIALS = PinnedAction("aws-actions/configure-aws-credentials",
                                         "e6de054238d6b7531b4efff3b6587d9aade6a06c", "v6.2.3")
PINNED = (CHECKOUT, SETUP_PYTHON, CONFIGURE_AWS_CREDENTIALS)
