"""Numbers in exchange settings stay within sane bounds, refused with the field named: a start
time later than a day from now (a first fetch put off for ever), an id that is not a positive
64-bit integer, a number that is not finite or beyond 64 bits."""

from datetime import UTC, datetime, timedelta

import pytest

from hashguard.exchanges.api import ExchangeConfigError, Field, Schema
from hashguard.exchanges.fields import MAX_NUMBER, check_fields
from hashguard.exchanges.ncmec import NcmecExchange
from hashguard.exchanges.stopncii import StopNcii
from hashguard.exchanges.threatexchange import ThreatExchangeExchange

LATER = "is later than"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    "given",
    [
        10**20,
        "100000000000000000000",
        "9" * 5000,
        _iso(datetime.now(UTC) + timedelta(days=3)),
        "9999-12-31T00:00:00Z",
    ],
    # named, not by value: a time made at collection differs between xdist's workers
    ids=["int-1e20", "digits-1e20", "digits-5000", "in-3-days", "year-9999"],
)
def test_an_ncmec_start_time_after_tomorrow_is_refused(given: object) -> None:
    with pytest.raises(ExchangeConfigError, match=rf"ncmec: start_time: .* {LATER}") as refused:
        NcmecExchange.check_config({"start_time": given})
    assert len(str(refused.value)) < 300


def test_an_ncmec_start_time_that_has_passed_or_is_about_to_is_taken() -> None:
    for given in ("", "0", "1700000000", "2024-01-01T00:00:00Z",
                  _iso(datetime.now(UTC) + timedelta(hours=2))):  # fmt: skip
        assert NcmecExchange.check_config({"start_time": given})["start_time"] == given
    with pytest.raises(ExchangeConfigError, match="only_esp_ids"):
        NcmecExchange.check_config({"only_esp_ids": [2**64]})


@pytest.mark.parametrize("group", [1e300, 2**63, float("inf"), float("nan"), -5, 0, 1.5, True])
def test_a_threatexchange_privacy_group_is_a_positive_64_bit_integer(group: object) -> None:
    with pytest.raises(ExchangeConfigError, match=r"privacy_group .*from 1 to"):
        ThreatExchangeExchange.check_config({"privacy_group": group})


def test_a_threatexchange_privacy_group_within_64_bits_is_taken() -> None:
    for group in (1, 1012345678901234, MAX_NUMBER, 42.0):
        assert ThreatExchangeExchange.check_config({"privacy_group": group})["privacy_group"] == (
            int(group))  # fmt: skip


def test_a_stopncii_start_timestamp_after_tomorrow_is_refused() -> None:
    tomorrow = int((datetime.now(UTC) + timedelta(days=2)).timestamp())
    with pytest.raises(ExchangeConfigError, match=f"start_timestamp: {tomorrow} {LATER}"):
        StopNcii.check_config({"start_timestamp": tomorrow})
    assert StopNcii.check_config({"start_timestamp": 1700000000})["start_timestamp"] == 1700000000


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e300, -(2**64)])
def test_a_number_setting_is_finite_and_within_64_bits(value: float) -> None:
    schema = Schema((Field("page_size", "number"),))
    with pytest.raises(ExchangeConfigError, match=r"page_size: .*(finite|out of range)"):
        check_fields(schema, {"page_size": value})
    assert check_fields(schema, {"page_size": 2.5}) == {"page_size": 2.5}
