"""The per-address rate limit: addresses idle for a window are forgotten, and IPv6 clients are
counted per /64 (one subscriber's network), an IPv4 address mapped into IPv6 as itself."""

from hashguard.rate_limit import AddressLimit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_addresses_whose_events_are_all_older_than_the_window_are_forgotten() -> None:
    clock = Clock()
    limit = AddressLimit(20, 3600.0, clock)
    for number in range(5000):
        assert limit.reserve(f"198.51.{number // 256}.{number % 256}")[0] == 0.0
    assert len(limit) == 5000
    clock.now += 1800
    limit.reserve("203.0.113.7")
    assert len(limit) == 5001  # still within the window
    clock.now += 1801
    assert limit.reserve("203.0.113.8")[0] == 0.0
    assert len(limit) == 2  # 203.0.113.7's event is still in its window


def test_an_address_is_limited_until_its_oldest_event_ages_out() -> None:
    clock = Clock()
    limit = AddressLimit(2, 60.0, clock)
    assert limit.reserve("192.0.2.1")[0] == 0.0
    clock.now += 10
    assert limit.reserve("192.0.2.1")[0] == 0.0
    assert limit.reserve("192.0.2.1") == (50.0, 0.0)
    clock.now += 50
    assert limit.reserve("192.0.2.1")[0] == 0.0


def test_ipv6_addresses_are_counted_per_64_and_mapped_ipv4_as_itself() -> None:
    limit = AddressLimit(2, 3600.0, Clock())
    assert limit.reserve("2001:db8:1:2::1")[0] == 0.0
    assert limit.reserve("2001:db8:1:2:ffff::99")[0] == 0.0
    assert limit.reserve("2001:db8:1:2:abcd::7")[0] > 0  # the same /64
    assert limit.reserve("2001:db8:1:3::1")[0] == 0.0  # another /64
    assert limit.reserve("192.0.2.9")[0] == 0.0
    assert limit.reserve("::ffff:192.0.2.9")[0] == 0.0
    assert limit.reserve("192.0.2.9")[0] > 0


def test_an_event_taken_back_does_not_count() -> None:
    limit = AddressLimit(1, 3600.0, Clock())
    wait, token = limit.reserve("2001:db8::1")
    assert wait == 0.0
    limit.release("2001:db8::2", token)  # the same /64
    assert limit.reserve("2001:db8::3")[0] == 0.0
