"""Create template.yaml inside moto and keep it running in this process.

Usage::

    with EmbeddedStack() as stack:          # mock_aws is active inside
        platform = stack.platform()         # the same wiring the CLI and handlers use
        stack.put_events([...])
        stack.deliver()                     # Lambda's SQS poller, run until queues are empty
"""

import contextlib
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.config import default_user_config

from orgkms.aws import Platform
from orgkms.config import DEFAULT_STACK_NAME
from orgkms.local import fidelity
from orgkms.local.runtime import InProcessLambda, SqsPoller
from orgkms.local.template import (
    ARTIFACT_BUCKET,
    load_template,
    localize_artifacts,
    placeholder_zip,
    state_machines,
    translate,
)

_PSEUDO = {
    "AWS::StackName": lambda stack: stack.stack_name,
    "AWS::Region": lambda stack: REGION,
    "AWS::AccountId": lambda stack: DEFAULT_ACCOUNT_ID,
    "AWS::Partition": lambda stack: "aws",
}

REGION = "us-east-1"
# The account the embedded stack plays a customer in, for BYOK keys.
CUSTOMER_ACCOUNT_ID = "210987654321"
MOTO_CONFIG: Any = {
    "lambda": {"use_docker": False},
    "stepfunctions": {"execute_state_machine": True},
    "batch": {"use_docker": False},
}
# Credentials that can reach nothing but the emulator.
LOCAL_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


def project_root() -> Path:
    """The folder holding template.yaml: ORGKMS_PROJECT_ROOT, or found from this file or cwd."""
    candidates = [os.environ.get("ORGKMS_PROJECT_ROOT")]
    candidates += [str(p) for p in Path(__file__).resolve().parents]
    candidates += [str(p) for p in [Path.cwd(), *Path.cwd().parents]]
    for candidate in candidates:
        if candidate and (Path(candidate) / "template.yaml").is_file():
            return Path(candidate)
    raise FileNotFoundError("template.yaml not found: run from the orgkms project folder")


class EmbeddedStack:
    """template.yaml created through moto's CloudFormation, with in-process Lambda."""

    def __init__(
        self,
        stack_name: str = DEFAULT_STACK_NAME,
        root: Path | None = None,
        handler_env: dict[str, str] | None = None,
    ) -> None:
        self.stack_name = stack_name
        self.root = root or project_root()
        self.runtime = InProcessLambda(handler_env)
        self.poller: SqsPoller | None = None
        self.outputs: dict[str, str] = {}
        self._mock: Any = None
        self._saved_env: dict[str, str | None] = {}

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> "EmbeddedStack":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, use_mock: bool = True) -> None:
        """Deploy the template. ``use_mock=False`` when a moto server already serves the APIs."""
        self._saved_env = {name: os.environ.get(name) for name in LOCAL_ENV}
        os.environ.update(LOCAL_ENV)
        default_user_config.update(MOTO_CONFIG)
        fidelity.install()
        if use_mock:
            self._mock = mock_aws(config=MOTO_CONFIG)
            self._mock.start()
        self.runtime.install()
        with _quiet_unsupported_resources():
            self._deploy()

    def stop(self) -> None:
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    # ------------------------------------------------------------ use

    def session(self) -> boto3.session.Session:
        return boto3.session.Session(region_name=REGION)

    def platform(self) -> Platform:
        """The same wiring the CLI uses against a deployed stack."""
        return Platform.from_stack(self.stack_name, self.session())

    def client(self, service: str) -> Any:
        return self.session().client(service, region_name=REGION)  # type: ignore[call-overload]

    def put_events(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        """Send control-plane events to the stack's bus (EventBusName filled in)."""
        bus = self.outputs["ControlPlaneBusName"]
        prepared = [{"EventBusName": bus, **entry} for entry in entries]
        response: dict[str, Any] = self.client("events").put_events(Entries=prepared)
        return response

    def deliver(self) -> int:
        """Run Lambda's SQS poller until every mapped queue is empty."""
        assert self.poller is not None, "stack not started"
        return self.poller.deliver()

    def drain(self, queue_url: str) -> list[str]:
        """Receive and delete every message of a queue; returns their bodies."""
        sqs, bodies = self.client("sqs"), []
        while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
            "Messages"
        ):
            for message in batch:
                bodies.append(message["Body"])
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return list(bodies)

    def customer_kms(self, account_id: str = CUSTOMER_ACCOUNT_ID, region: str = REGION) -> Any:
        """A KMS client acting as a customer's own AWS account (for BYOK keys).

        Keys it creates live in ``account_id``; the platform reaches them by ARN only as far as
        their key policies allow (see fidelity rule 12).
        """
        kms = self.session().client("kms", region_name=region)

        def as_customer(request: Any, **_: Any) -> None:
            request.headers["x-moto-account-id"] = account_id

        kms.meta.events.register("before-sign.kms.*", as_customer)
        return kms

    def subscribe(self, name: str, detail_types: list[str] | None = None) -> str:
        """A queue that receives orgkms's result events (of ``detail_types``, or all); its URL."""
        sqs, events = self.client("sqs"), self.client("events")
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        bus = self.outputs["ControlPlaneBusName"]
        pattern: dict[str, Any] = {"source": ["orgkms"]}
        if detail_types:
            pattern["detail-type"] = detail_types
        events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": name, "Arn": arn}])
        return str(url)

    def results(self, queue_url: str) -> list[dict[str, Any]]:
        """Drain a :meth:`subscribe` queue: each event as ``{"detail-type": ..., **detail}``."""
        return [
            {"detail-type": body["detail-type"], **body["detail"]}
            for body in map(json.loads, self.drain(queue_url))
        ]

    def listen(self, name: str, detail_types: list[str]) -> Callable[[], list[dict[str, Any]]]:
        """:meth:`subscribe`, returning a function that gives what arrived since its last call."""
        url = self.subscribe(name, detail_types)
        return lambda: self.results(url)

    def executions(self) -> set[str]:
        """ARNs of the re-key workflow's executions so far."""
        sfn = self.client("stepfunctions")
        machine = self.outputs["MigrationStateMachineArn"]
        listed = sfn.list_executions(stateMachineArn=machine)["executions"]
        return {e["executionArn"] for e in listed}

    def wait_for_execution(self, before: set[str], timeout: float = 120) -> dict[str, Any]:
        """Wait for the execution started since ``before`` to end; its description, with the
        parsed output as ``result``."""
        import time

        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = self.executions() - before
            if new:
                described = dict(sfn.describe_execution(executionArn=new.pop()))
                if described["status"] != "RUNNING":
                    described["result"] = json.loads(described.get("output") or "{}")
                    return described
            time.sleep(0.05)
        raise TimeoutError(f"no re-key execution ended within {timeout} s")

    def invoke(self, output_name: str, payload: dict[str, Any] | None = None) -> Any:
        """Invoke one of the stack's functions (named by its Output) in-process."""
        response = self.client("lambda").invoke(
            FunctionName=self.outputs[output_name], Payload=json.dumps(payload or {})
        )
        return json.loads(response["Payload"].read())

    def dead_letters(self, output_name: str = "OrgCreatedDLQUrl") -> list[dict[str, Any]]:
        """Read (without deleting) what sits in a dead-letter queue."""
        sqs = self.client("sqs")
        messages = sqs.receive_message(
            QueueUrl=self.outputs[output_name], MaxNumberOfMessages=10, VisibilityTimeout=0
        ).get("Messages", [])
        return [dict(m) for m in messages]

    # ------------------------------------------------------------ deployment

    def _deploy(self) -> None:
        from moto.awslambda.utils import get_backend
        from moto.sqs.models import sqs_backends

        template, code = localize_artifacts(load_template(self.root / "template.yaml"), self.root)
        s3 = self.client("s3")
        s3.create_bucket(Bucket=ARTIFACT_BUCKET)
        for item in code.values():
            s3.put_object(Bucket=ARTIFACT_BUCKET, Key=item.s3_key, Body=placeholder_zip(item))

        translated = translate(template, self.client("iam"))
        cfn = self.client("cloudformation")
        cfn.create_stack(
            StackName=self.stack_name,
            TemplateBody=json.dumps(translated),
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        stack = cfn.describe_stacks(StackName=self.stack_name)["Stacks"][0]
        if stack["StackStatus"] != "CREATE_COMPLETE":
            raise RuntimeError(f"embedded stack {self.stack_name}: {stack['StackStatus']}")
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

        lambda_backend = get_backend(DEFAULT_ACCOUNT_ID, REGION)
        resources = cfn.describe_stack_resources(StackName=self.stack_name)["StackResources"]
        for resource in resources:
            local = code.get(resource.get("LogicalResourceId", ""))
            if resource.get("ResourceType") == "AWS::Lambda::Function" and local is not None:
                self.runtime.register(lambda_backend, resource["PhysicalResourceId"], local)
        self.poller = SqsPoller(
            self.runtime, sqs_backends[DEFAULT_ACCOUNT_ID][REGION], lambda_backend
        )
        self._recreate_state_machines(translated, resources)
        self._apply_bucket_settings(translated, resources)

    def _apply_bucket_settings(
        self, translated: dict[str, Any], resources: list[dict[str, Any]]
    ) -> None:
        """moto's CloudFormation creates buckets without their versioning and public access
        block; apply them as AWS would."""
        physical = {r.get("LogicalResourceId"): r.get("PhysicalResourceId") for r in resources}
        s3 = self.client("s3")
        for logical_id, resource in translated.get("Resources", {}).items():
            if resource.get("Type") != "AWS::S3::Bucket" or logical_id not in physical:
                continue
            props, bucket = resource.get("Properties", {}), physical[logical_id]
            status = props.get("VersioningConfiguration", {}).get("Status")
            if status:
                s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})
            if "PublicAccessBlockConfiguration" in props:
                s3.put_public_access_block(
                    Bucket=bucket,
                    PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"],
                )

    def _recreate_state_machines(
        self, translated: dict[str, Any], resources: list[dict[str, Any]]
    ) -> None:
        """moto's CloudFormation ignores DefinitionSubstitutions and makes state machines its
        interpreter cannot run: create each again through the API, substituted, same name."""
        physical = {str(r.get("LogicalResourceId")): r.get("PhysicalResourceId") for r in resources}
        sfn = self.client("stepfunctions")
        for logical_id, props in state_machines(translated).items():
            definition = self._resolve(props.get("DefinitionString", ""), physical)
            for name, value in props.get("DefinitionSubstitutions", {}).items():
                definition = definition.replace("${" + name + "}", self._resolve(value, physical))
            name = self._resolve(props.get("StateMachineName", logical_id), physical)
            role = self._resolve(props.get("RoleArn", ""), physical)
            existing = [m for m in sfn.list_state_machines()["stateMachines"] if m["name"] == name]
            for machine in existing:
                sfn.delete_state_machine(stateMachineArn=machine["stateMachineArn"])
            sfn.create_state_machine(
                name=name,
                definition=definition,
                roleArn=role,
                type=props.get("StateMachineType", "STANDARD"),
            )

    def _resolve(self, value: Any, physical: dict[str, Any]) -> str:
        """The few intrinsics a state machine's properties use, against the created stack."""
        if isinstance(value, str):
            return value
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return str(separator).join(self._resolve(p, physical) for p in parts)
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            for key, replacement in _PSEUDO.items():
                text = text.replace("${" + key + "}", replacement(self))
            return text
        if "Ref" in value:
            ref = value["Ref"]
            return _PSEUDO[ref](self) if ref in _PSEUDO else str(physical[ref])
        if "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            return self._arn_of(logical_id, attribute, physical)
        raise ValueError(f"cannot resolve {value!r} locally")

    def _arn_of(self, logical_id: str, attribute: str, physical: dict[str, Any]) -> str:
        name = str(physical[logical_id])
        if attribute == "Arn" and name.startswith("arn:"):
            return name
        if attribute == "Arn":
            for service, call, key in (
                ("lambda", "get_function", "Configuration"),
                ("iam", "get_role", "Role"),
            ):
                try:
                    client = self.client(service)
                    found = getattr(client, call)(
                        **({"FunctionName": name} if service == "lambda" else {"RoleName": name})
                    )
                    return str(found[key]["FunctionArn" if service == "lambda" else "Arn"])
                except client.exceptions.ClientError:
                    continue
        raise ValueError(f"cannot resolve {logical_id}.{attribute} locally")


# Resource types moto's CloudFormation skips. They hold access policies, which moto would not
# evaluate anyway; `sam validate --lint` and the template tests check them instead.
SKIPPED_BY_EMULATOR = ("AWS::SQS::QueuePolicy", "AWS::S3::BucketPolicy")


@contextlib.contextmanager
def _quiet_unsupported_resources() -> Iterator[None]:
    cfn_logger = logging.getLogger("moto")
    level = cfn_logger.level
    cfn_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*not supported by moto.*")
            yield
    finally:
        cfn_logger.setLevel(level)
