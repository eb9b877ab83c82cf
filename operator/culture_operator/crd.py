"""The CulturePlatform CRD, generated from the pydantic spec (pure), and a writer for the YAML files.

`python -m culture_operator.crd --write` regenerates `crds/cultureplatforms.yaml`, the operator chart's
copy and the platform chart's values.schema.json (whose `platform.spec` is the CRD's spec schema); a
unit test fails when any is stale.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

import yaml

from culture_operator import spec as s
from culture_operator.builders.names import DNS_LABEL_MAX, strimzi_max_name_length

CONDITION_TYPES = ("Ready", "KafkaReady", "DatabasesReady", "ServicesReady")
PHASES = ("Pending", "Progressing", "Ready", "Failed")

REPO = Path(__file__).resolve().parents[2]
CRD_PATHS = (
    REPO / "crds" / "cultureplatforms.yaml",
    REPO / "charts" / "culture-operator" / "crds" / "cultureplatforms.yaml",
)
PLATFORM_VALUES_SCHEMA = REPO / "charts" / "culture-platform" / "values.schema.json"


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


def _strimzi_name_rule() -> dict[str, Any]:
    """Strimzi names broker pods <cluster>-<pool>-<id>, both owner-prefixed: cap the name in mode strimzi."""
    limit = strimzi_max_name_length()
    return {
        "rule": f"size(self.metadata.name) <= {limit} || (has(self.spec) && has(self.spec.kafka) && "
        "has(self.spec.kafka.mode) && self.spec.kafka.mode != 'strimzi')",
        "message": f"metadata.name must be at most {limit} characters when spec.kafka.mode is strimzi: "
        f"Strimzi names the broker pods <name>-kafka-<name>-dual-role-<node id>, at most {DNS_LABEL_MAX} "
        "characters",
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
                                },
                                _strimzi_name_rule(),
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


def _json_schema(node: Any) -> Any:
    """A structural schema as plain JSON Schema: without the keywords only the API server knows
    (x-kubernetes-*: CEL rules, preserve-unknown-fields, ...), which helm's validator would ignore,
    and closed objects (unknown fields refused instead of pruned)."""
    if isinstance(node, list):
        return [_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: (v if k in ("default", "example", "enum") else _json_schema(v))
           for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if "properties" in out and "additionalProperties" not in out \
            and not node.get("x-kubernetes-preserve-unknown-fields"):
        # the API server would prune an unknown field silently: a typo in the values is an error here
        out["additionalProperties"] = False
    return out


def platform_values_schema() -> dict[str, Any]:
    """values.schema.json of charts/culture-platform: `platform.spec` is the CRD's spec schema (helm
    checks the values before rendering; the API server then applies the CEL rules too)."""
    version = build_crd()["spec"]["versions"][0]
    spec = _json_schema(version["schema"]["openAPIV3Schema"]["properties"]["spec"])
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "culture-platform chart values (generated by python -m culture_operator.crd --write)",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "operator": {
                "type": "object", "additionalProperties": False,
                "properties": {"enabled": {"type": "boolean", "description": "install the culture-operator "
                                           "chart (CRD and operator) with the platform"}},
            },
            "platform": {
                "type": "object", "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "maxLength": 40, "pattern": "^([a-z]([-a-z0-9]*[a-z0-9])?)?$",
                             "description": "the CulturePlatform's name (a DNS label); empty: the release "
                                            "name"},
                    "spec": {**spec, "description": "the CulturePlatform's spec (kubectl explain cp.spec)"},
                },
            },
            "secrets": {
                "type": "object", "description": "Secrets created with the platform: name -> keys (e.g. a "
                "database in mode external, named by its secretRef)",
                "propertyNames": {"maxLength": 253, "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
                "additionalProperties": {"type": "object", "minProperties": 1,
                                         "propertyNames": {"pattern": r"^[-._a-zA-Z0-9]+$"},
                                         "additionalProperties": {"type": ["string", "integer"]}},
            },
            "gatewayNodePort": {"type": ["integer", "null"], "minimum": 30000, "maximum": 32767,
                                "description": "a NodePort Service in front of the gateway on this node "
                                               "port (kind-config.yaml maps 30080); null: none"},
            "culture-operator": {"type": "object", "description": "values of the culture-operator chart"},
            "global": {"type": "object"},
        },
    }


def render_values_schema() -> str:
    return json.dumps(platform_values_schema(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    """CLI: print the CRD, or write it to the repository's files."""
    parser = argparse.ArgumentParser(description="Generate the CulturePlatform CRD from the typed spec.")
    parser.add_argument("--write", action="store_true",
                        help="write " + ", ".join(map(str, (*CRD_PATHS, PLATFORM_VALUES_SCHEMA))))
    args = parser.parse_args(argv)
    text = render()
    if not args.write:
        print(text, end="")
        return 0
    for path in CRD_PATHS:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    PLATFORM_VALUES_SCHEMA.write_text(render_values_schema())
    print(f"wrote {PLATFORM_VALUES_SCHEMA}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
