import pytest

from orgkms.ids import org_alias_name, org_prefix, validate_data_type, validate_org_id


@pytest.mark.parametrize("org_id", ["acme", "Acme", "ACME-01", "a1", "x_y-z", "a" * 63])
def test_valid_org_ids_are_returned_exactly_as_given(org_id: str) -> None:
    assert validate_org_id(org_id) == org_id


@pytest.mark.parametrize(
    "org_id",
    [
        "",
        "a",
        "-acme",
        "_acme",
        "acme/../x",
        "ac me",
        "acme\n",
        "a" * 64,
        "аcme",  # Cyrillic а
        "acme.",
        "ａcme",
        "acme\u200b",
        "../etc",
        "org*",
    ],
)
def test_invalid_org_ids_are_refused_with_the_rule(org_id: str) -> None:
    with pytest.raises(ValueError, match="organization id must be"):
        validate_org_id(org_id)


def test_ids_differing_only_in_case_stay_distinct_everywhere() -> None:
    assert org_alias_name("Acme") != org_alias_name("acme")
    assert org_prefix("Acme") != org_prefix("acme")


@pytest.mark.parametrize("data_type", ["", ".hidden", "a/b", "x" * 64, "ünïcode"])
def test_invalid_data_types_are_refused(data_type: str) -> None:
    with pytest.raises(ValueError, match="data type must be"):
        validate_data_type(data_type)
