"""A stopped (or timed-out / history-limit-failed) execution holds the org's lock forever.

Fixed: the migration lock is the checkpoint's status alone. It is released only by the ``fail``
step or by ``switch``; an execution that ends without running either (StopExecution by an
operator, the execution's history hitting the 25,000-event limit, a state-machine timeout)
leaves status DUAL/REENCRYPTING/... with a dead execution ARN. ``Platform.start_migration`` and
``CheckpointStore.begin`` then refuse every later start ("already being migrated by <dead
execution>") and there is no documented way out short of editing the DynamoDB item.

Fix: when the lock holder is not RUNNING (``DescribeExecution``; grant the lifecycle and
migration roles ``states:DescribeExecution``), let ``begin`` take the lock over (conditional on
the stale execution id), or give the lock a heartbeat/lease; document an unlock command.
"""

import time
from typing import Any

from orgkms.cli import main


def test_a_stopped_migration_does_not_block_the_next_one(
    workflow: Any, platform: Any, create_org: Any, capsys: Any
) -> None:
    org = create_org(keyMode="shared")
    sfn = workflow.client("stepfunctions")
    capsys.readouterr()
    assert main(["--json", "migrate", org, "--cache-drain-seconds", "3600"]) == 0
    import json

    execution = json.loads(capsys.readouterr().out)["execution"]
    for _ in range(200):  # until it waits in "Let cached keys expire"
        checkpoint = platform.checkpoints.get(org)
        if checkpoint is not None and checkpoint.status == "REENCRYPTING":
            break
        time.sleep(0.05)
    sfn.stop_execution(executionArn=execution, error="Operator", cause="stopped by an operator")
    for _ in range(200):
        if sfn.describe_execution(executionArn=execution)["status"] != "RUNNING":
            break
        time.sleep(0.05)
    assert sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"
    capsys.readouterr()

    code = main(["migrate", org, "--cache-drain-seconds", "0", "--wait"])

    _, err = capsys.readouterr()
    assert code == 0, err
