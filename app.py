#!/usr/bin/env python3
"""CDK entry point: `cdk synth` builds every environment in cdk.json; `cdk synth -c env=prod` builds one."""

import os
import sys

import aws_cdk as cdk

from stacks.app_builder import build_app
from stacks.config import ConfigError, project_context

# The CDK CLI passes cdk.json's context (feature flags included); `python app.py` alone reads it here.
app = cdk.App() if "CDK_CONTEXT_JSON" in os.environ else cdk.App(context=project_context())
try:
    build_app(app)
except ConfigError as err:
    sys.exit(f"cdk.json: {err}")
app.synth()
