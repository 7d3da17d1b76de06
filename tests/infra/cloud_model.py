"""The synthesized cloud assembly as a deployed account would see it: every template of one stage, its
CloudFormation intrinsics resolved to concrete values, and an evaluator for the policy documents in it.

Used by the validators in tests/infra that ask what a service will be allowed to do (service principals,
IAM validity). Values CloudFormation only knows at deploy time get stable stand-ins that keep the shape
AWS gives them: an SNS topic's Ref is its ARN, an SQS queue's Arn attribute an ``arn:aws:sqs:...`` ARN whose
name is the logical id, and so on (the CloudFormation resource reference's "Return values" of each type).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCOUNT = "111122223333"
PARTITION = "aws"


def _lower(text: str) -> str:
    return re.sub(r"[^a-z0-9-]", "", text.lower())


@dataclass(frozen=True)
class Resource:
    stack: str
    logical_id: str
    type: str
    properties: Mapping[str, Any]
    metadata: Mapping[str, Any]


@dataclass
class Stage:
    """All templates of one environment, with a resolver for their intrinsic functions."""

    name: str
    region: str
    templates: dict[str, dict[str, Any]]
    exports: dict[str, tuple[str, Any]] = field(default_factory=dict)
    account: str = ACCOUNT

    @classmethod
    def load(cls, outdir: Path, environment: str, region: str, account: str = ACCOUNT) -> Stage:
        templates = {path.name.removesuffix(".template.json"): json.loads(path.read_text())
                     for path in sorted((outdir / f"assembly-{environment}").glob("*.template.json"))}
        stage = cls(name=environment, region=region, templates=templates, account=account)
        for stack, template in templates.items():
            for output in template.get("Outputs", {}).values():
                if "Export" in output:
                    stage.exports[output["Export"]["Name"]] = (stack, output["Value"])
        return stage

    # ------------------------------------------------------------------------------------------ resources
    def resources(self, resource_type: str | None = None) -> Iterator[Resource]:
        for stack, template in self.templates.items():
            for logical_id, body in template["Resources"].items():
                if resource_type is None or body["Type"] == resource_type:
                    yield Resource(stack, logical_id, body["Type"], body.get("Properties", {}),
                                   body.get("Metadata", {}))

    def resource(self, stack: str, logical_id: str) -> Resource:
        body = self.templates[stack]["Resources"][logical_id]
        return Resource(stack, logical_id, body["Type"], body.get("Properties", {}), body.get("Metadata", {}))

    # ------------------------------------------------------------------------------------------ resolving
    def resolve(self, stack: str, value: Any) -> Any:
        """``value`` with every intrinsic function replaced by its deploy-time stand-in."""
        if isinstance(value, list):
            return [self.resolve(stack, v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (name, argument), = value.items()
            if name == "Ref":
                return self._ref(stack, argument)
            if name == "Fn::GetAtt":
                logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self._get_att(stack, logical_id, attribute)
            if name == "Fn::Join":
                delimiter, items = argument
                return delimiter.join(str(self.resolve(stack, i)) for i in self.resolve(stack, items))
            if name == "Fn::Sub":
                return self._sub(stack, argument)
            if name == "Fn::ImportValue":
                export = self.resolve(stack, argument)
                if export not in self.exports:
                    raise KeyError(f"{stack} imports {export!r}, which no stack of {self.name} exports")
                owner, exported = self.exports[export]
                return self.resolve(owner, exported)
            if name == "Fn::Select":
                index, items = argument
                return self.resolve(stack, items)[int(self.resolve(stack, index))]
            if name == "Fn::Split":
                delimiter, text = argument
                return str(self.resolve(stack, text)).split(delimiter)
            if name.startswith("Fn::"):
                raise NotImplementedError(f"{name} in {stack}: add it to the resolver")
        return {k: self.resolve(stack, v) for k, v in value.items()}

    def _sub(self, stack: str, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.resolve(stack, variables[name]))
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return str(self._get_att(stack, logical_id, attribute))
            return str(self._ref(stack, name))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)

    def _pseudo(self, name: str) -> str | None:
        return {"AWS::AccountId": self.account, "AWS::Region": self.region, "AWS::Partition": PARTITION,
                "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": ""}.get(name)

    def _arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (f"arn:{PARTITION}:{service}:{self.region if region else ''}:{self.account if account else ''}:"
                f"{resource}")

    def _ref(self, stack: str, name: str) -> Any:
        pseudo = self._pseudo(name)
        if pseudo is not None:
            return pseudo
        if name == "AWS::StackName":
            return stack
        template = self.templates[stack]
        if name in template.get("Parameters", {}):
            parameter = template["Parameters"][name]
            if parameter["Type"].startswith("AWS::SSM::Parameter::Value"):
                # A published name (stacks/constructs/published_names.py): the value another stack of this
                # stage writes to that SSM parameter; another stage's (a central registry) stays a placeholder.
                return self._published(parameter.get("Default", "")) or f"<{name}>"
            return parameter.get("Default", f"<{name}>") if parameter["Type"] == "String" else f"<{name}>"
        kind = template["Resources"][name]["Type"]
        named = self._physical_name(stack, name)
        refs = {
            "AWS::SNS::Topic": lambda: self._arn("sns", named),
            "AWS::SQS::Queue": lambda: f"https://sqs.{self.region}.amazonaws.com/{self.account}/{named}",
            "AWS::StepFunctions::StateMachine": lambda: self._arn("states", f"stateMachine:{named}"),
            "AWS::KMS::Key": lambda: f"key-{name}",
            "AWS::IAM::ManagedPolicy": lambda: f"arn:{PARTITION}:iam::{self.account}:policy/{named}",
        }
        if kind in refs:
            return refs[kind]()
        return named

    def _published(self, parameter_name: str) -> Any:
        for parameter in self.resources("AWS::SSM::Parameter"):
            if parameter.properties.get("Name") == parameter_name:
                return self.resolve(parameter.stack, parameter.properties["Value"])
        return None

    def _physical_name(self, stack: str, logical_id: str) -> str:
        body = self.templates[stack]["Resources"][logical_id]
        props = body.get("Properties", {})
        for key in ("TopicName", "QueueName", "BucketName", "FunctionName", "RoleName", "LogGroupName",
                    "StateMachineName", "TableName", "Name", "AlarmName", "PipelineName",
                    "ModelPackageGroupName", "DeliveryStreamName", "DashboardName", "RepositoryName"):
            if key in props and isinstance(props[key], str):
                return props[key]
            if key in props:
                return str(self.resolve(stack, props[key]))
        name = f"{stack}-{logical_id}"
        return _lower(name) if body["Type"] == "AWS::S3::Bucket" else name

    def _get_att(self, stack: str, logical_id: str, attribute: str) -> Any:
        body = self.templates[stack]["Resources"][logical_id]
        kind = body["Type"]
        named = self._physical_name(stack, logical_id)
        arns = {
            "AWS::SQS::Queue": lambda: self._arn("sqs", named),
            "AWS::SNS::Topic": lambda: self._arn("sns", named),
            "AWS::KMS::Key": lambda: self._arn("kms", f"key/key-{logical_id}"),
            "AWS::Events::Rule": lambda: self._arn("events", f"rule/{named}"),
            "AWS::Lambda::Function": lambda: self._arn("lambda", f"function:{named}"),
            "AWS::S3::Bucket": lambda: f"arn:{PARTITION}:s3:::{named}",
            "AWS::CloudWatch::Alarm": lambda: self._arn("cloudwatch", f"alarm:{named}"),
            "AWS::Logs::LogGroup": lambda: self._arn("logs", f"log-group:{named}:*"),
            "AWS::IAM::Role": lambda: f"arn:{PARTITION}:iam::{self.account}:role/{named}",
            "AWS::DynamoDB::Table": lambda: self._arn("dynamodb", f"table/{named}"),
            "AWS::StepFunctions::StateMachine": lambda: self._arn("states", f"stateMachine:{named}"),
            "AWS::KinesisFirehose::DeliveryStream": lambda: self._arn("firehose", f"deliverystream/{named}"),
            "AWS::SageMaker::ModelPackageGroup": lambda: self._arn("sagemaker", f"model-package-group/{named}"),
            "AWS::SageMaker::Pipeline": lambda: self._arn("sagemaker", f"pipeline/{named}"),
            # CloudFormation "Return values" of AWS::ECR::Repository: Ref the name, Arn and RepositoryUri.
            "AWS::ECR::Repository": lambda: self._arn("ecr", f"repository/{named}"),
            # IAM names an OIDC provider after its URL without the scheme (CloudFormation "Return values").
            "AWS::IAM::OIDCProvider": lambda: f"arn:{PARTITION}:iam::{self.account}:oidc-provider/"
                                              f"{str(body['Properties']['Url']).removeprefix('https://')}",
        }
        if attribute in ("Arn", "ModelPackageGroupArn") and kind in arns:
            return arns[kind]()
        if kind == "AWS::SQS::Queue" and attribute == "QueueName":
            return named
        if kind == "AWS::SNS::Topic" and attribute == "TopicName":
            return named
        if kind == "AWS::S3::Bucket" and attribute in ("DomainName", "RegionalDomainName"):
            return f"{named}.s3.{self.region}.amazonaws.com"
        if kind == "AWS::ApiGatewayV2::Api" and attribute == "ApiEndpoint":
            return f"https://{logical_id.lower()}.execute-api.{self.region}.amazonaws.com"
        if kind == "AWS::SSM::Parameter" and attribute in ("Value", "Type"):
            return f"<{logical_id}.{attribute}>"
        if kind == "AWS::IAM::Role" and attribute == "RoleId":
            return f"AROA{logical_id.upper()[:16]}"
        if kind == "AWS::Lambda::Function" and attribute == "SnapStartResponse.ApplyOn":
            return "None"
        return f"<{logical_id}.{attribute}>"

    # ---------------------------------------------------------------------------------------- lookups
    def find_by_arn(self, arn: str, resource_type: str) -> Resource | None:
        for resource in self.resources(resource_type):
            if self._get_att(resource.stack, resource.logical_id, "Arn") == arn:
                return resource
        return None

    def find(self, arn: str, resource_type: str) -> Resource:
        found = self.find_by_arn(arn, resource_type)
        assert found is not None, f"{arn} is no {resource_type} of {self.name}"
        return found

    def role_documents(self, role_arn: str) -> tuple[Resource, list[Mapping[str, Any]]]:
        """The role and its identity policies (inline, attached AWS::IAM::Policy and managed policies)."""
        role = self.find(role_arn, "AWS::IAM::Role")
        documents = [self.resolve(role.stack, p["PolicyDocument"]) for p in role.properties.get("Policies", [])]
        for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for policy in self.resources(kind):
                roles = policy.properties.get("Roles", [])
                if policy.stack == role.stack and any(r == {"Ref": role.logical_id} for r in roles):
                    documents.append(self.resolve(policy.stack, policy.properties["PolicyDocument"]))
        return role, documents


# ------------------------------------------------------------------------------------------ evaluation
def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _glob(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case_sensitive else re.IGNORECASE) is not None


def action_matches(pattern: str, action: str) -> bool:
    return _glob(pattern, action, case_sensitive=False)


def _principal_matches(principal: Any, caller: Mapping[str, str]) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        return False
    for kind, values in principal.items():
        for value in _as_list(values):
            if value == "*" and kind == "AWS":
                return True
            if kind in caller and caller[kind] == value:
                return True
    return False


_POSITIVE_STRING = {"StringEquals": lambda p, v: p == v, "StringLike": _glob,
                    "StringEqualsIgnoreCase": lambda p, v: p.lower() == v.lower(),
                    "ArnEquals": lambda p, v: p == v, "ArnLike": _glob}
_NEGATED = {"StringNotEquals": "StringEquals", "StringNotLike": "StringLike", "ArnNotEquals": "ArnEquals",
            "ArnNotLike": "ArnLike"}
_NUMERIC = {"NumericLessThan": lambda v, p: v < p, "NumericLessThanEquals": lambda v, p: v <= p,
            "NumericGreaterThan": lambda v, p: v > p, "NumericGreaterThanEquals": lambda v, p: v >= p,
            "NumericEquals": lambda v, p: v == p}


def _condition_holds(operator: str, key: str, expected: Any, context: Mapping[str, Any]) -> bool:
    """IAM's condition semantics for the operators the templates use; anything else fails loudly."""
    if operator.startswith(("ForAnyValue:", "ForAllValues:")):
        # Multivalued keys (IAM User Guide, "Set operators"): any / every value of the request's set matches.
        quantifier, single = operator.split(":", 1)
        values = _as_list({k.lower(): v for k, v in context.items()}.get(key.lower()))
        if not values:
            return quantifier == "ForAllValues"
        matches = [_condition_holds(single, key, expected, {key: value}) for value in values]
        return any(matches) if quantifier == "ForAnyValue" else all(matches)
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    present = {k.lower(): v for k, v in context.items()}
    if key.lower() not in present:
        # A missing key makes every positive operator false and every negated one true (IAM User Guide,
        # "Condition operators": ...IfExists and negated matching).
        return if_exists or base in _NEGATED
    actual = present[key.lower()]
    patterns = [str(p) for p in _as_list(expected)]
    if base in _POSITIVE_STRING:
        return any(_POSITIVE_STRING[base](p, str(actual)) for p in patterns)
    if base in _NEGATED:
        return not any(_POSITIVE_STRING[_NEGATED[base]](p, str(actual)) for p in patterns)
    if base == "Bool":
        return any(str(actual).lower() == p.lower() for p in patterns)
    if base in _NUMERIC:
        return any(_NUMERIC[base](float(actual), float(p)) for p in patterns)
    raise NotImplementedError(f"condition operator {operator} is not modelled")


def statement_applies(statement: Mapping[str, Any], *, caller: Mapping[str, str] | None, action: str,
                      resource: str, context: Mapping[str, Any]) -> bool:
    if caller is not None and "Principal" in statement \
            and not _principal_matches(statement["Principal"], caller):
        return False
    if "NotPrincipal" in statement:
        raise NotImplementedError("NotPrincipal is not modelled")
    if "Action" in statement and not any(action_matches(p, action) for p in _as_list(statement["Action"])):
        return False
    if "NotAction" in statement and any(action_matches(p, action) for p in _as_list(statement["NotAction"])):
        return False
    if "Resource" in statement and not any(_glob(p, resource) for p in _as_list(statement["Resource"])):
        return False
    if "NotResource" in statement and any(_glob(p, resource) for p in _as_list(statement["NotResource"])):
        return False
    for operator, pairs in statement.get("Condition", {}).items():
        for key, expected in pairs.items():
            if not _condition_holds(operator, key, expected, context):
                return False
    return True


def evaluate(documents: list[Mapping[str, Any]], *, caller: Mapping[str, str] | None, action: str,
             resource: str, context: Mapping[str, Any]) -> str:
    """'allow', 'deny' (an explicit Deny applies) or 'implicit' (nothing allows) for one request."""
    allowed = False
    for document in documents:
        for statement in _as_list(document.get("Statement")):
            if statement_applies(statement, caller=caller, action=action, resource=resource, context=context):
                if statement["Effect"] == "Deny":
                    return "deny"
                allowed = True
    return "allow" if allowed else "implicit"
