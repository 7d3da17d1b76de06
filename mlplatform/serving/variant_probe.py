"""Replaying a package's golden payloads against one endpoint variant (InvokeEndpoint with TargetVariant).

Used by the scheduled health check (every variant) and by the deployer right after a deployment (the
variants that serve the new model). Every failure becomes a verdict, never an exception: an endpoint that
throws, times out or answers wrongly is exactly what the caller wants to record.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

from mlcore.s3_uri import split_s3_uri
from mlplatform.serving.golden_check import (
    CaseResult,
    GoldenFormatError,
    GoldenPayloads,
    VariantVerdict,
    check_answer,
    golden_uri_of_package,
    parse_golden,
)


def load_golden_for_package(sagemaker_client: Any, s3_client: Any, model_package_arn: str,
                            cache: MutableMapping[str, GoldenPayloads] | None = None) -> GoldenPayloads:
    """The package's golden payloads (a package's artifacts never change, so a cache by ARN is safe)."""
    if cache is not None and model_package_arn in cache:
        return cache[model_package_arn]
    description = sagemaker_client.describe_model_package(ModelPackageName=model_package_arn)
    bucket, key = split_s3_uri(golden_uri_of_package(description))
    try:
        document = json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())
    except json.JSONDecodeError as err:
        raise GoldenFormatError(f"s3://{bucket}/{key} is not JSON ({err.msg})") from err
    golden = parse_golden(document)
    if cache is not None:
        cache[model_package_arn] = golden
    return golden


def probe_variant(runtime_client: Any, *, endpoint_name: str, variant: str, model_package_arn: str,
                  golden: GoldenPayloads) -> VariantVerdict:
    """Invoke ``variant`` with every golden case and judge each answer."""
    results: list[CaseResult] = []
    for case in golden.cases:
        try:
            response = runtime_client.invoke_endpoint(
                EndpointName=endpoint_name, TargetVariant=variant, ContentType=case.content_type,
                Accept=case.accept, Body=case.body.encode("utf-8"))
            body = response["Body"].read()
            text = body.decode("utf-8") if isinstance(body, bytes | bytearray) else str(body)
            answered_variant = response.get("InvokedProductionVariant")
        except Exception as err:
            code = (getattr(err, "response", None) or {}).get("Error", {}).get("Code", "")
            return VariantVerdict(variant=variant, model_package_arn=model_package_arn, cases=tuple(results),
                                  error=f"case {case.name}: InvokeEndpoint failed ({code or type(err).__name__}: "
                                        f"{str(err)[:300]})")
        if answered_variant and answered_variant != variant:
            return VariantVerdict(variant=variant, model_package_arn=model_package_arn, cases=tuple(results),
                                  error=f"case {case.name}: answered by variant {answered_variant!r}, "
                                        f"not the targeted {variant!r}")
        results.append(check_answer(case, body=text, content_type=str(response.get("ContentType", "")),
                                    tolerance=golden.tolerance, label=golden.label))
    return VariantVerdict(variant=variant, model_package_arn=model_package_arn, cases=tuple(results))


def check_variant(sagemaker_client: Any, s3_client: Any, runtime_client: Any, *, endpoint_name: str,
                  variant: str, model_package_arn: str,
                  cache: MutableMapping[str, GoldenPayloads] | None = None) -> VariantVerdict:
    """Load the golden payloads of the package ``variant`` serves, then probe it."""
    if not model_package_arn:
        return VariantVerdict(variant=variant, model_package_arn="",
                              error="the variant's model was not created from a registry package; "
                                    "there are no golden payloads to check it with")
    try:
        golden = load_golden_for_package(sagemaker_client, s3_client, model_package_arn, cache)
    except (GoldenFormatError, ValueError) as err:
        return VariantVerdict(variant=variant, model_package_arn=model_package_arn,
                              error=f"golden payloads unusable: {err}")
    except Exception as err:
        return VariantVerdict(variant=variant, model_package_arn=model_package_arn,
                              error=f"golden payloads unreadable: {type(err).__name__}: {str(err)[:300]}")
    return probe_variant(runtime_client, endpoint_name=endpoint_name, variant=variant,
                         model_package_arn=model_package_arn, golden=golden)
