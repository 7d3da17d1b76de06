"""Writes mlsettings/aws_values.json from botocore's service models and partition data: the instance types per
SageMaker purpose and the regions where SageMaker has an endpoint. The settings package is standard library only,
so it reads this snapshot instead of botocore; tests/unit/test_aws_values.py fails when the snapshot differs from
the pinned botocore (`python -m tests.aws_values_snapshot` rewrites it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import botocore
import botocore.loaders
from botocore.regions import EndpointResolver

SNAPSHOT = Path(__file__).resolve().parents[1] / "mlsettings" / "aws_values.json"
SHAPES = ("TrainingInstanceType", "ProcessingInstanceType", "ProductionVariantInstanceType", "TransformInstanceType")


def snapshot() -> dict[str, Any]:
    loader = botocore.loaders.create_loader()
    model = loader.load_service_model("sagemaker", "service-2")
    resolver = EndpointResolver(loader.load_data("endpoints"))
    prefix = model["metadata"]["endpointPrefix"]
    regions = sorted({region for partition in resolver.get_available_partitions()
                      for region in resolver.get_available_endpoints(prefix, partition)})
    return {"source": f"botocore {botocore.__version__}: sagemaker service-2 shapes and endpoints data",
            "sagemaker_instance_types": {shape: sorted(model["shapes"][shape]["enum"]) for shape in SHAPES},
            "sagemaker_regions": regions}


def main() -> None:
    SNAPSHOT.write_text(json.dumps(snapshot(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {SNAPSHOT}")


if __name__ == "__main__":
    main()
