"""Found in review: inputs that slip past validation or past the CLI's error handling."""

from typing import Any

import pytest
from pydantic import ValidationError

from orgkms import cli
from orgkms.errors import OrgKmsError
from orgkms.models import OrgCreated


@pytest.mark.parametrize("region", ["us-east-\u0661", "us-east-\uff11", "eu-west-\u0967"])
def test_regions_with_non_ascii_digits_are_refused(region: str) -> None:
    """Fixed (low): REGION_PATTERN's ``\\d`` is Unicode-aware in pydantic's (Rust) regex engine.

    ``us-east-\u0661`` (ARABIC-INDIC DIGIT ONE) validates, so the event is not rejected as
    invalid: botocore then refuses the region name inside provisioning, the message is retried
    MaxReceiveCount times and dead-lettered with no ``event-rejected`` event and no logged
    reason, and the registry keeps a CREATING record whose region is that string.

    Fix: use ``[0-9]`` in REGION_PATTERN (and validate against the partition's region list).
    """
    with pytest.raises(ValidationError):
        OrgCreated.model_validate({"organizationId": "acme", "region": region})


def test_a_malformed_endpoint_url_is_one_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """Fixed (low): ``orgkms --endpoint-url 'http://[::1' status`` dies with a Python traceback.

    main() calls _apply_endpoint() outside its try block; urlparse(...).hostname raises
    ValueError("Invalid IPv6 URL") for a malformed bracketed host, which escapes main() as an
    uncaught exception (traceback on stderr) instead of "orgkms: error: ..." and exit 1.
    The same happens with AWS_ENDPOINT_URL set to such a value.

    Fix: move _apply_endpoint() inside the try (or catch ValueError in _apply_endpoint).
    """

    def no_platform(args: Any) -> Any:  # never reach a network in this test
        raise OrgKmsError("no platform in this test")

    monkeypatch.setattr(cli, "_platform", no_platform)
    # main() writes the endpoint into os.environ: make monkeypatch restore it afterwards.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("AWS_ENDPOINT_URL")

    code = cli.main(["--endpoint-url", "http://[::1", "status"])

    out, err = capsys.readouterr()
    assert code == cli.EXIT_ERROR
    assert out == "" and err.startswith("orgkms: error:") and err.count("\n") == 1
