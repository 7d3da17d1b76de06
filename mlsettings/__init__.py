"""The settings package: what crosses the wall between the infrastructure (``stacks/``) and the runtime code.

Standard library only (no CDK, no AWS SDK), so the stacks, the Lambda handlers, the domain package, the step
scripts in SageMaker containers, the operator CLI and the demo can all import it. A rule or a name that both
sides need is written here once.
"""
