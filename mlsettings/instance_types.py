"""Rules about SageMaker instance types that every request builder applies the same way.

Instance types with local (NVMe) instance storage
-------------------------------------------------
The API reference states, for ``ResourceConfig.VolumeKmsKeyId`` (CreateTrainingJob),
``ProcessingClusterConfig.VolumeKmsKeyId`` (CreateProcessingJob) and ``TransformResources.VolumeKmsKeyId``
(CreateTransformJob): "Certain Nitro-based instances include local storage, dependent on the instance type.
Local storage volumes are encrypted using a hardware module on the instance. You can't request a
VolumeKmsKeyId when using an instance type with local storage." CreateEndpointConfig's ``KmsKeyId`` said the
same until botocore 1.43 ("If you specify a value for KmsKeyId when using any nitro-based instances with local
storage, the call to CreateEndpointConfig fails."); since 1.44 it says the key "does not encrypt instance
local storage". Omitting the key is right under both wordings.

AWS publishes no list of those types for SageMaker; the SageMaker Python SDK encodes one
(``volume_size_supported`` / ``instance_supports_kms``, ``src/sagemaker/utils.py`` at v2.257.6, commit
fc582aaa46faf7b7e16ab1e13840869712174cd0; the same logic in sagemaker-core's ``common_utils.py``): a "d" in the
instance family (c5d, g4dn, p4d, dl1 …) or a family starting with g5, g6, p5 or trn1.
``tests/unit/test_instance_types.py`` runs the SDK's own function (read from its pinned wheel) against ours
for every instance type in botocore's service model. We add the families botocore lists that the SDK's rule
predates and that EC2's instance-type pages give NVMe instance store (trn2, g7/g7e, the p6 families): when in
doubt, omitting the key is the safe direction — the request is accepted (the disks are hardware-encrypted, or
EBS uses the AWS-managed key) instead of refused.
"""

from __future__ import annotations

SDK_LOCAL_STORAGE_PREFIXES = ("g5", "g6", "p5", "trn1")
"""Families the SDK's rule marks as local storage besides those with a "d" (its comment: "g5 or g6 or p5")."""
LATER_LOCAL_STORAGE_PREFIXES = ("trn2", "g7", "p6")
"""Families in botocore's enums after the SDK's rule was written, with NVMe instance store on EC2."""

SMALLEST_INSTANCE_STORE_GB = 50
"""The smallest NVMe instance store among the instance types with local storage that SageMaker offers (ml.c5d.large:
one 50 GB NVMe SSD, EC2 "Instance store volume information"): a volume size up to this fits any of them, since on those
types "you can't request a VolumeSizeInGB greater than the total size of the local instance storage" (API reference,
ResourceConfig and ProcessingClusterConfig)."""

MANAGED_SPOT_NO_CHECKPOINT_MAX_WAIT_SECONDS = 3600
"""Developer Guide, "Managed Spot Training": "SageMaker AI built-in algorithms and marketplace algorithms that do
not checkpoint are currently limited to a MaxWaitTimeInSeconds of 3600 seconds (60 minutes)"."""


def instance_family(instance_type: str) -> str:
    """``ml.g5.xlarge`` → ``g5``; ``ml.p6-b200.48xlarge`` → ``p6-b200``."""
    parts = instance_type.split(".")
    if len(parts) == 3 and parts[0] == "ml":
        parts = parts[1:]
    if len(parts) != 2 or not parts[0]:
        raise ValueError(f"{instance_type!r} is not an instance type such as 'ml.m5.xlarge'")
    return parts[0]


def has_local_storage(instance_type: str) -> bool:
    """True when SageMaker mounts NVMe instance storage on this type: no volume KMS key may be requested, and a
    requested volume size cannot exceed the instance store."""
    family = instance_family(instance_type)
    return "d" in family or family.startswith(SDK_LOCAL_STORAGE_PREFIXES + LATER_LOCAL_STORAGE_PREFIXES)


def volume_kms_key(instance_type: str, key_arn: str | None) -> dict[str, str]:
    """``{"VolumeKmsKeyId": key}`` for a type that accepts one, else nothing (the API refuses it)."""
    if not key_arn or has_local_storage(instance_type):
        return {}
    return {"VolumeKmsKeyId": key_arn}


def same_storage_class(instance_type: str, candidates: frozenset[str] | set[str] | list[str]) -> list[str]:
    """The candidates whose storage class (local NVMe or EBS) is that of ``instance_type``, sorted: the values a
    run-time override of a parameterised instance type may take without contradicting the volume key the
    definition was built with."""
    local = has_local_storage(instance_type)
    return sorted(c for c in candidates if has_local_storage(c) == local)


def is_gpu_instance(instance_type: str) -> bool:
    """The SageMaker SDK's rule for picking an image's processor (sagemaker-core 2.27.0, image_uris._processor): a
    family starting with 'g' or 'p' is a GPU one ("inf" and "trn" families are accelerators of their own)."""
    family = instance_family(instance_type)
    return bool(family) and not family.startswith(("inf", "trn")) and family[0] in ("g", "p")
