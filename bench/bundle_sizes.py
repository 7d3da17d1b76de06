"""Each Lambda bundle's size in a synthesized cloud assembly: unzipped bytes and files, with and without the
installed wheels (first-party code only: ``lambdas/``, ``mlplatform/``, ``mlcore/``, ``mlops/``, ``pipelines/``).

    python -m bench.bundle_sizes [CDK_OUT]   (default: cdk.out; run `make synth` first)

Prints a Markdown table, one row per bundle (functions that share an asset share a row).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

FIRST_PARTY = ("lambdas", "mlplatform", "mlcore", "mlsettings", "mlops", "pipelines", "stacks", "tests")


@dataclass(frozen=True)
class BundleSize:
    asset: str
    handlers: tuple[str, ...]
    files: int
    bytes: int
    first_party_files: int
    first_party_bytes: int
    top_level: tuple[str, ...]


def lambda_bundles(cdk_out: Path, assembly: str = "assembly-dev") -> dict[str, list[str]]:
    """``{asset directory: [handler strings]}`` of every Lambda function in one environment's assembly."""
    bundles: dict[str, list[str]] = {}
    for template in sorted((cdk_out / assembly).glob("*.template.json")):
        resources = json.loads(template.read_text()).get("Resources", {})
        for resource in resources.values():
            if resource["Type"] != "AWS::Lambda::Function":
                continue
            path = resource.get("Metadata", {}).get("aws:asset:path")
            if path:
                handlers = bundles.setdefault(str((cdk_out / assembly / path).resolve()), [])
                handlers.append(resource["Properties"]["Handler"])
    return bundles


def measure(directory: Path, handlers: list[str]) -> BundleSize:
    files = [p for p in directory.rglob("*") if p.is_file()]
    first_party = [p for p in files if p.relative_to(directory).parts[0] in FIRST_PARTY]
    top = sorted({p.relative_to(directory).parts[0] for p in first_party})
    return BundleSize(asset=directory.name, handlers=tuple(sorted(handlers)), files=len(files),
                      bytes=sum(p.stat().st_size for p in files), first_party_files=len(first_party),
                      first_party_bytes=sum(p.stat().st_size for p in first_party), top_level=tuple(top))


def bundle_sizes(cdk_out: Path) -> list[BundleSize]:
    return sorted((measure(Path(d), h) for d, h in lambda_bundles(cdk_out).items()), key=lambda b: b.handlers)


def markdown(sizes: list[BundleSize]) -> str:
    lines = ["| function (handler) | bundle bytes | files | first-party bytes | first-party files | first-party "
             "packages |", "|---|---:|---:|---:|---:|---|"]
    for size in sizes:
        name = ", ".join(sorted({h.split(".")[1] for h in size.handlers}))
        lines.append(f"| {name} | {size.bytes:,} | {size.files:,} | {size.first_party_bytes:,} | "
                     f"{size.first_party_files} | {', '.join(size.top_level)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cdk_out", nargs="?", default="cdk.out", type=Path)
    args = parser.parse_args(argv)
    print(markdown(bundle_sizes(args.cdk_out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
