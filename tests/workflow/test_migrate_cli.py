"""`orgkms migrate ORG --wait` and `orgkms status ORG` as an operator uses them."""

import io
import json
import time
from typing import Any

from orgkms.cli import main


def test_migrate_wait_shows_progress_and_status_reports_it(
    workflow: Any, platform: Any, create_org: Any, capsys: Any
) -> None:
    org = create_org(keyMode="shared")
    for i in range(5):
        platform.store.put(org, "document", f"n{i}.txt", io.BytesIO(b"x" * 1000))
    capsys.readouterr()

    code = main(["migrate", org, "--wait", "--cache-drain-seconds", "0"])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"migration of {org} completed: 5 objects re-encrypted" in out
    assert "5/5 objects" in err
    assert main(["--json", "status", org]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["keyMode"] == "dedicated"
    assert status["migration"]["status"] == "COMPLETED"


def test_a_second_migration_while_one_runs_is_refused_and_a_stopped_ones_lock_is_taken_over(
    workflow: Any, platform: Any, create_org: Any, capsys: Any
) -> None:
    org = create_org(keyMode="shared")
    platform.store.put(org, "document", "a.txt", io.BytesIO(b"a"))
    capsys.readouterr()
    assert main(["migrate", org, "--cache-drain-seconds", "600"]) == 0  # parks in its Wait
    running = capsys.readouterr().out.rsplit(" ", 1)[-1].strip()
    sfn = workflow.client("stepfunctions")
    deadline = time.monotonic() + 60
    while getattr(platform.checkpoints.get(org), "status", "") not in ("DUAL", "REENCRYPTING"):
        assert sfn.describe_execution(executionArn=running)["status"] == "RUNNING"
        assert time.monotonic() < deadline, "the migration never reached its dual phase"
        time.sleep(0.05)

    refused = main(["migrate", org])
    out, err = capsys.readouterr()
    sfn.stop_execution(executionArn=running)  # never reaches the fail step: its lock is stale
    taken_over = main(["migrate", org, "--wait", "--cache-drain-seconds", "0"])

    assert refused == 1 and out == ""
    assert f"already being migrated by {running}" in err
    assert taken_over == 0
    assert platform.checkpoints.get(org).status == "COMPLETED"


def test_invalid_migration_options_are_one_line(
    workflow: Any, create_org: Any, capsys: Any
) -> None:
    org = create_org(keyMode="shared")
    capsys.readouterr()

    code = main(["migrate", org, "--deletion-window", "3"])

    _, err = capsys.readouterr()
    assert code == 1 and err.count("\n") == 1 and "deletionWindowDays" in err
