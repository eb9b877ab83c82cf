"""The CulturePlatform CRD, generated from the pydantic spec (pure), and a writer for the YAML files.

`python -m culture_operator.crd --write` regenerates `crds/cultureplatforms.yaml` and the chart's copy;
a unit test fails when either is stale.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

import yaml

from culture_operator import spec as s

CONDITION_TYPES = ("Ready", "KafkaReady", "DatabasesReady", "ServicesReady")
PHASES = ("Pending", "Progressing", "Ready", "Failed")

REPO = Path(__file__).resolve().parents[2]
CRD_PATHS = (
    REPO / "crds" / "cultureplatforms.yaml",
    REPO / "charts" / "culture-operator" / "crds" / "cultureplatforms.yaml",
)


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    """Turn pydantic's JSON schema into a Kubernetes structural schema.

    Inlines $refs, drops titles, turns `X | None` into an optional X, and gives every optional
    object property a `{}` default so the API server fills in its nested defaults.
    """
    if isinstance(node, list):
        return [_structural(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].split("/")[-1]])
        rest = {k: v for k, v in node.items() if k != "$ref"}
        target.update(rest)  # a description on the referring field wins
        return _structural(target, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express anyOf {node['anyOf']} structurally")
        merged = {**options[0], **{k: v for k, v in node.items() if k != "anyOf"}}
        if merged.get("default", "x") is None:
            del merged["default"]
        return _structural(merged, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "$defs"):
            continue
        if key == "additionalProperties" and value is False:
            continue  # structural schemas prune unknown fields; strict field validation reports them
        if key == "properties":
            out[key] = {name: _structural(v, defs) for name, v in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = _structural(value, defs)
        else:
            out[key] = value
    if out.get("type") == "object" and "properties" in out:
        for name, prop in out["properties"].items():
            if (
                prop.get("type") == "object"
                and "properties" in prop
                and not prop.get("required")  # an object with required fields has no sensible default
                and name not in out.get("required", [])
            ):
                prop.setdefault("default", {})
    if out.get("type") is None and "enum" in out:
        out["type"] = "string"
    return out


def spec_schema() -> dict[str, Any]:
    """The structural OpenAPI v3 schema of `.spec`."""
    raw = s.CulturePlatformSpec.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    schema = _structural(raw, defs)
    schema["description"] = (
        "Desired state of a CulturePlatform: Kafka mode and topics, databases, the image and, per "
        "service and role, replicas and resources."
    )
    return schema


def _condition_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "One aspect of the platform's state, in Strimzi's shape.",
        "required": ["type", "status"],
        "properties": {
            "type": {
                "type": "string",
                "enum": list(CONDITION_TYPES),
                "description": "Ready, KafkaReady, DatabasesReady or ServicesReady.",
            },
            "status": {
                "type": "string",
                "enum": ["True", "False", "Unknown"],
                "description": "True, False or Unknown.",
            },
            "reason": {"type": "string", "description": "One CamelCase word saying why."},
            "message": {"type": "string", "description": "What a human should know, and what to do."},
            "lastTransitionTime": {
                "type": "string",
                "format": "date-time",
                "description": "When the status last changed (not the message).",
            },
            "observedGeneration": {
                "type": "integer",
                "format": "int64",
                "description": "metadata.generation the condition was computed for.",
            },
        },
    }


def status_schema() -> dict[str, Any]:
    """The schema of `.status` (written by the operator only)."""
    return {
        "type": "object",
        "description": "Observed state, written by the operator.",
        "properties": {
            "observedGeneration": {
                "type": "integer",
                "format": "int64",
                "description": "metadata.generation of the spec last reconciled.",
            },
            "phase": {
                "type": "string",
                "enum": list(PHASES),
                "description": "Pending, Progressing, Ready or Failed: a one-word summary.",
            },
            "kafkaBootstrapServers": {"type": "string", "description": "Where the services find Kafka."},
            "children": {"type": "integer", "description": "Number of child objects the operator owns."},
            "conditions": {
                "type": "array",
                "description": "Ready, KafkaReady, DatabasesReady and ServicesReady.",
                "items": _condition_schema(),
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
        },
    }


def build_crd() -> dict[str, Any]:
    """The complete CustomResourceDefinition of CulturePlatform."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{s.PLURAL}.{s.GROUP}",
            "labels": {"app.kubernetes.io/part-of": "culture-platform"},
        },
        "spec": {
            "group": s.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": s.KIND,
                "listKind": f"{s.KIND}List",
                "plural": s.PLURAL,
                "singular": s.SINGULAR,
                "shortNames": list(s.SHORT_NAMES),
                "categories": list(s.CATEGORIES),
            },
            "versions": [
                {
                    "name": s.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {
                            "name": "Ready",
                            "type": "string",
                            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
                            "description": "Whether the whole platform is ready.",
                        },
                        {
                            "name": "Phase",
                            "type": "string",
                            "jsonPath": ".status.phase",
                            "description": "One-word summary of the state.",
                        },
                        {
                            "name": "Kafka",
                            "type": "string",
                            "jsonPath": ".spec.kafka.mode",
                            "description": "strimzi or external.",
                        },
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": (
                                "CulturePlatform: one installation of the CulturePlatform social network "
                                "(Kafka, databases and services), reconciled by the culture operator."
                            ),
                            "x-kubernetes-validations": [
                                {
                                    "rule": "size(self.metadata.name) <= 40",
                                    "message": "metadata.name must be at most 40 characters: "
                                    "children are named <name>-<service>-<role>",
                                }
                            ],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": {**spec_schema(), "default": {}},
                                "status": status_schema(),
                            },
                        }
                    },
                }
            ],
        },
    }


def render() -> str:
    """The CRD as the YAML text stored in the repository."""
    header = "# Generated from culture_operator/spec.py by `python -m culture_operator.crd --write`.\n"
    return header + yaml.safe_dump(build_crd(), sort_keys=False, width=110)


def main(argv: list[str] | None = None) -> int:
    """CLI: print the CRD, or write it to the repository's files."""
    parser = argparse.ArgumentParser(description="Generate the CulturePlatform CRD from the typed spec.")
    parser.add_argument("--write", action="store_true", help="write " + ", ".join(map(str, CRD_PATHS)))
    args = parser.parse_args(argv)
    text = render()
    if not args.write:
        print(text, end="")
        return 0
    for path in CRD_PATHS:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
