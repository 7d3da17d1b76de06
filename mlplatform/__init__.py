"""The platform's domain: the AWS-facing logic the Lambda handlers, the operator CLI, the demo and the
processing job share, by capability (registry, serving, monitoring, inference). Every function takes the AWS
clients it uses as arguments; nothing here creates a client at import (docs/ARCHITECTURE.md)."""
