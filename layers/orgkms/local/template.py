"""Reading template.yaml and translating it with aws-sam-translator, as `sam deploy` would."""

import copy
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ARTIFACT_BUCKET = "orgkms-local-artifacts"


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that turns short-form intrinsics (!Ref, !GetAtt, !Sub...) into long form."""


def _intrinsic(loader: yaml.Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in {"Ref", "Condition"} else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return dict(yaml.load(handle, Loader=_CfnLoader))  # noqa: S506 - a SafeLoader subclass


@dataclass(frozen=True)
class LocalCode:
    """Where a function's (or layer's) code lives in the working tree."""

    logical_id: str
    folder: Path
    handler: str | None
    s3_key: str


def localize_artifacts(
    template: dict[str, Any], root: Path
) -> tuple[dict[str, Any], dict[str, LocalCode]]:
    """Point every local CodeUri/ContentUri at the artifact bucket, as `sam package` would.

    Returns the rewritten template and, per logical id, where its code really is.
    """
    rewritten = copy.deepcopy(template)
    code: dict[str, LocalCode] = {}
    globals_handler = rewritten.get("Globals", {}).get("Function", {}).get("Handler")
    for logical_id, resource in rewritten.get("Resources", {}).items():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::StateMachine" and isinstance(
            props.get("DefinitionUri"), str
        ):
            # What `sam package` does with a local definition, but inline: no upload needed.
            props["Definition"] = json.loads((root / props.pop("DefinitionUri")).read_text())
            continue
        field = {
            "AWS::Serverless::Function": "CodeUri",
            "AWS::Serverless::LayerVersion": "ContentUri",
        }.get(resource.get("Type", ""))
        if field is None or not isinstance(props.get(field), str):
            continue
        folder = (root / props[field]).resolve()
        key = f"{logical_id}.zip"
        props[field] = f"s3://{ARTIFACT_BUCKET}/{key}"
        code[logical_id] = LocalCode(logical_id, folder, props.get("Handler", globals_handler), key)
    return rewritten, code


def state_machines(translated: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The translated template's state machines: logical id -> properties."""
    return {
        logical_id: resource.get("Properties", {})
        for logical_id, resource in translated.get("Resources", {}).items()
        if resource.get("Type") == "AWS::StepFunctions::StateMachine"
    }


def placeholder_zip(code: LocalCode) -> bytes:
    """A small zip standing for the artifact; the handler itself runs from the working tree."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ORGKMS_LOCAL", f"code runs in-process from {code.folder}\n")
    return buffer.getvalue()


def translate(template: dict[str, Any], iam_client: Any) -> dict[str, Any]:
    """The CloudFormation template aws-sam-translator makes of a SAM template."""
    from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
    from samtranslator.translator.transform import transform

    return dict(transform(template, {}, ManagedPolicyLoader(iam_client)))
