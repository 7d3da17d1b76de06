#!/usr/bin/env python3
"""CDK entry point: `cdk synth` builds every environment in cdk.json; `cdk synth -c env=prod` builds one."""

import sys

import aws_cdk as cdk

from stacks.app_builder import build_app
from stacks.config import ConfigError

app = cdk.App()
try:
    build_app(app)
except ConfigError as err:
    sys.exit(f"cdk.json: {err}")
app.synth()
