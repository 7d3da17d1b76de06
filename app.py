#!/usr/bin/env python3
"""CDK entry point: `cdk synth` builds every environment in cdk.json; `cdk synth -c env=prod` builds one."""

import os
import sys

import aws_cdk as cdk

from mlsettings.config import CDK_JSON, ConfigError, project_context
from mlsettings.config.locations import where
from stacks.app_builder import build_app

# The CDK CLI passes cdk.json's context (feature flags included); `python app.py` alone reads it here.
app = cdk.App() if "CDK_CONTEXT_JSON" in os.environ else cdk.App(context=project_context())
try:
    build_app(app)
except ConfigError as err:
    # cdk.json:LINE:COLUMN of the setting (the CLI passes cdk.json's context; the file is the project's)
    sys.exit(f"{where(CDK_JSON.name, CDK_JSON.read_text(encoding='utf-8'), str(err))}: {err}")
app.synth()
