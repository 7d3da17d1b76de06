"""mlsettings/sagemaker_enums.py is exactly botocore's SageMaker model at the pinned botocore: the instance-type
enums and SageMaker's regions that `mlops config validate` and synth check cdk.json against. The snapshot exists
so the check needs no botocore at all (loading its service model was most of validate's time); this test keeps it
true. When botocore's pin moves and this fails, regenerate it::

    .venv/bin/python -m tests.unit.test_sagemaker_enums --write
"""

from __future__ import annotations

import sys
from pathlib import Path

import botocore
import botocore.session

from mlsettings import sagemaker_enums

SNAPSHOT = Path(sagemaker_enums.__file__)
SHAPES = ("TrainingInstanceType", "ProcessingInstanceType", "ProductionVariantInstanceType", "TransformInstanceType")


def from_botocore() -> tuple[dict[str, tuple[str, ...]], tuple[str, ...]]:
    session = botocore.session.get_session()
    model = session.get_service_model("sagemaker")
    enums = {shape: tuple(sorted(model.shape_for(shape).enum)) for shape in SHAPES}
    regions = tuple(sorted({region for partition in session.get_available_partitions()
                            for region in session.get_available_regions("sagemaker", partition_name=partition)}))
    return enums, regions


def render() -> str:
    enums, regions = from_botocore()
    lines = ['"""Generated from botocore\'s SageMaker service model and partition data (botocore '
             f'{botocore.__version__}) by',
             "``python -m tests.unit.test_sagemaker_enums --write``; tests/unit/test_sagemaker_enums.py keeps it equal",
             "to the pinned botocore. Standard library only: checking cdk.json needs no AWS SDK.", '"""', "",
             "from __future__ import annotations", "", f'BOTOCORE_VERSION = "{botocore.__version__}"', "",
             "INSTANCE_TYPES: dict[str, frozenset[str]] = {"]
    for shape, values in enums.items():
        lines.append(f'    "{shape}": frozenset({{')
        lines += [f'        "{value}",' for value in values]
        lines.append("    }),")
    lines += ["}", '"""The instance-type enums of the requests the configuration feeds (shape name → values)."""',
              "", "SAGEMAKER_REGIONS: frozenset[str] = frozenset({"]
    lines += [f'    "{region}",' for region in regions]
    lines += ["})", '"""Every region of every partition where SageMaker has an endpoint."""', ""]
    return "\n".join(lines)


def test_the_snapshot_equals_botocores_model() -> None:
    enums, regions = from_botocore()
    assert botocore.__version__ == sagemaker_enums.BOTOCORE_VERSION
    assert {shape: frozenset(values) for shape, values in enums.items()} == sagemaker_enums.INSTANCE_TYPES
    assert frozenset(regions) == sagemaker_enums.SAGEMAKER_REGIONS
    assert SNAPSHOT.read_text() == render()


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        SNAPSHOT.write_text(render())
        print(f"wrote {SNAPSHOT}")
