"""Control-plane events under faults: each ends done exactly once or in the DLQ with its reason.

Faults strike at random AWS calls of the org-lifecycle function (seeded): KMS throttling,
internal errors, timeouts before the request and after the answer; DynamoDB conditional-check
races, throttling, lost answers; EventBridge errors; and the function killed between two calls.
Messages are redelivered as SQS does, up to ``MaxReceiveCount``, then dead-lettered. An hour
later (leases and in-progress idempotency records expired) the DLQ is redriven without faults:
then every organization must be done, with one key and one alias, and none lost.
"""

import json
import random
import uuid
from collections import Counter
from typing import Any

from orgkms.models import control_plane_entry
from tests.stress.conftest import SIZES, TierCapture
from tests.stress.faults import (
    CONTROL_PLANE_FAULTS,
    CrashingRuntime,
    FaultInjector,
    faulty_sessions,
    time_passes,
)

SEED = 20261206
FAULT_RATE = 0.06
REGION = "eu-central-1"  # the faults' keys stay out of the region the other tiers scan
FAILED_LINE = "control-plane event failed; it will be retried"


def org_keys_and_aliases(stack: Any) -> tuple[Counter[str], Counter[str]]:
    """Keys tagged per organization and aliases per organization, in one pass over the region."""
    kms = stack.session().client("kms", region_name=REGION)
    keys: Counter[str] = Counter()
    for page in kms.get_paginator("list_keys").paginate():
        for key in page["Keys"]:
            tags = kms.list_resource_tags(KeyId=key["KeyId"]).get("Tags", [])
            for tag in tags:
                if tag["TagKey"] == "orgkms:organization-id":
                    keys[tag["TagValue"]] += 1
    aliases: Counter[str] = Counter()
    for page in kms.get_paginator("list_aliases").paginate():
        for alias in page["Aliases"]:
            name = alias["AliasName"]
            if name.startswith("alias/org-") and name.endswith("-encryption"):
                aliases[name[len("alias/org-") : -len("-encryption")]] += 1
    return keys, aliases


def result_events(stack: Any) -> tuple[str, Any]:
    """A queue receiving every org-key-ready event, and a function removing its rule."""
    sqs, events = stack.client("sqs"), stack.client("events")
    name = f"stress-results-{uuid.uuid4().hex[:6]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    bus = stack.outputs["ControlPlaneBusName"]
    pattern = {"source": ["orgkms"], "detail-type": ["org-key-ready"]}
    events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn["QueueArn"]}])

    def remove() -> None:
        events.remove_targets(Rule=name, EventBusName=bus, Ids=["q"])
        events.delete_rule(Name=name, EventBusName=bus)

    return url, remove


def org_of(body: str) -> str:
    return str(json.loads(body)["detail"]["organizationId"])


def logged_reasons(capture: TierCapture, crashes: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Per organization, the reasons its failed deliveries were logged with."""
    reasons: dict[str, set[str]] = {}
    for line in capture.logs.lines:
        if FAILED_LINE not in line or not line.startswith('{"'):
            continue
        record = json.loads(line)
        if record.get("org_id") and record.get("reason"):
            reasons.setdefault(record["org_id"], set()).add(record["reason"])
    for crash in crashes:
        for body in crash["bodies"]:
            reasons.setdefault(org_of(body), set()).add(crash["reason"])
    return reasons


def test_control_plane_events_under_faults_end_done_once_or_dead_lettered(
    stack: Any, platform: Any, figures: Any, tier_capture: TierCapture
) -> None:
    # GIVEN organizations to create, one in five on the shared key, and faults at random calls
    rng = random.Random(SEED)
    run = uuid.uuid4().hex[:6]
    modes = {
        f"flt-{run}-{i:04d}": "shared" if rng.random() < 0.2 else "dedicated"
        for i in range(SIZES.fault_events)
    }
    injector = FaultInjector(SEED, FAULT_RATE, CONTROL_PLANE_FAULTS)
    function = stack.outputs["OrgLifecycleFunctionName"]
    dlq = stack.outputs["OrgCreatedDLQUrl"]
    stack.drain(dlq)
    results, remove_rule = result_events(stack)
    entries = [
        control_plane_entry(
            "org-created", {"organizationId": org, "keyMode": mode, "region": REGION}
        )
        for org, mode in modes.items()
    ]

    # WHEN they are delivered with faults, then the DLQ is redriven an hour later without faults
    try:
        with faulty_sessions(injector), CrashingRuntime(stack.runtime, injector) as runtime:
            stack.runtime.configure(function)  # a cold start: its clients carry the faults
            for start in range(0, len(entries), 10):
                stack.put_events(entries[start : start + 10])
            stack.deliver()
            dead = {org_of(body): body for body in stack.drain(dlq)}
            first_pass = {org: platform.registry.get(org) for org in modes}
            keys_after_faults, aliases_after_faults = org_keys_and_aliases(stack)
            reasons = logged_reasons(tier_capture, runtime.crashes)

            injector.rate = 0.0
            registry = stack.runtime._resolve(function).module._get_consumer()._keys._registry
            with time_passes(3600, registry):
                sqs = stack.client("sqs")
                for body in dead.values():
                    sqs.send_message(QueueUrl=stack.outputs["OrgCreatedQueueUrl"], MessageBody=body)
                stack.deliver()
            still_dead = [org_of(body) for body in stack.drain(dlq)]
    finally:
        stack.runtime.configure(function)  # later tests get clients without the hooks
        ready_events = [json.loads(b)["detail"] for b in stack.drain(results)]
        remove_rule()

    # THEN each event was done once or dead-lettered with a reason, and the redrive lost nothing
    done_first = {org for org, rec in first_pass.items() if rec is not None and rec.ready}
    lost_first = set(modes) - done_first - set(dead)
    no_reason = sorted(org for org in dead if not reasons.get(org))
    duplicated = sorted(org for org, count in keys_after_faults.items() if count > 1)
    final = {org: platform.registry.get(org) for org in modes}
    keys, aliases = org_keys_and_aliases(stack)
    shared = stack.outputs["SharedPlatformKeyArn"]
    wrong = sorted(
        org
        for org, mode in modes.items()
        if not (final[org] and final[org].ready)
        or (mode == "dedicated" and (keys[org], aliases[org]) != (1, 1))
        or (mode == "shared" and (keys[org], final[org].encrypt_key_arn) != (0, shared))
    )
    arns_per_org: dict[str, set[str]] = {}
    for detail in ready_events:
        arns_per_org.setdefault(detail["organizationId"], set()).add(detail["keyArn"])
    figures.counts.update(
        events=len(modes),
        aws_calls=injector.calls,
        faults_injected=sum(injector.injected.values()),
        function_crashes=len(runtime.crashes),
        done_first_pass=len(done_first),
        dead_lettered=len(dead),
        dead_lettered_without_reason=len(no_reason),
        lost=len(lost_first),
        duplicated_keys=len(duplicated),
        redriven_done=len(set(dead) - set(still_dead)),
        wrong_after_redrive=len(wrong),
        result_events=len(ready_events),
        orgs_with_two_key_arns_announced=sum(len(a) > 1 for a in arns_per_org.values()),
    )
    print("\nfaults injected:", dict(sorted(injector.injected.items())))
    assert sum(injector.injected.values()) > 0
    assert lost_first == set()
    assert no_reason == [], (
        [line for line in tier_capture.logs.lines if no_reason[0] in line][:6],
        [c for c in runtime.crashes if any(no_reason[0] in b for b in c["bodies"])],
        len(tier_capture.logs.lines),
        [line for line in tier_capture.logs.lines if FAILED_LINE in line][:2],
    )
    assert duplicated == [] and max(aliases_after_faults.values(), default=0) <= 1
    assert still_dead == []
    assert wrong == [], [(o, final[o], keys[o], aliases[o]) for o in wrong]
    assert all(len(arns) == 1 for arns in arns_per_org.values())
    assert set(arns_per_org) == set(modes)
