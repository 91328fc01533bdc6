"""The rate limits: addresses idle for a window are forgotten, and IPv6 clients are counted per
/64 (one subscriber's network), an IPv4 address mapped into IPv6 as itself; guesses of a secret
are bounded per address (a right one after the limit waits too) and uses per secret; budgets
refill over the hour."""

import math

import pytest

from hashguard.rate_limit import AddressLimit, Budget, Guesses, RateLimited


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


def test_a_port_a_proxy_appends_does_not_make_each_connection_an_address() -> None:
    """Granian's proxy headers keep X-Forwarded-For's port (uvicorn's drop it): one address
    guessing from many source ports is one address."""
    guesses = Guesses("complaint links", 2, 900.0, 100, Clock())
    for port in (5001, 5002):
        guesses.attempt(f"198.51.100.7:{port}")  # wrong guesses: never taken back
    with pytest.raises(RateLimited) as limited:
        guesses.attempt("198.51.100.7:5003")
    assert limited.value.scope == "address"
    limit = AddressLimit(1, 3600.0, Clock())
    assert limit.reserve("[2001:db8:1:2::1]:443")[0] == 0.0
    assert limit.reserve("2001:db8:1:2::99")[0] > 0  # the same /64, without brackets or port


def test_an_event_taken_back_does_not_count() -> None:
    limit = AddressLimit(1, 3600.0, Clock())
    wait, token = limit.reserve("2001:db8::1")
    assert wait == 0.0
    limit.release("2001:db8::2", token)  # the same /64
    assert limit.reserve("2001:db8::3")[0] == 0.0


def test_wrong_guesses_are_bounded_per_address_and_a_right_one_waits_too() -> None:
    clock = Clock()
    guesses = Guesses("complaint links", 3, 60.0, 100, clock)
    for _ in range(3):  # wrong: each stays counted
        guesses.attempt("192.0.2.1")
    clock.now += 20
    with pytest.raises(RateLimited) as refused:
        guesses.attempt("192.0.2.1")  # the right secret now is refused before it is checked
    assert refused.value.scope == "address" and refused.value.retry_after == 40
    assert "complaint links" in str(refused.value)
    guesses.attempt("192.0.2.2")  # another address is not held back
    clock.now += 40  # the first wrong guess ages out
    token = guesses.attempt("192.0.2.1")
    guesses.right("192.0.2.1", token, "the right link")  # a right guess is taken back
    guesses.right("192.0.2.1", guesses.attempt("192.0.2.1"), "the right link")


def test_uses_of_one_secret_are_bounded_from_any_address() -> None:
    clock = Clock()
    guesses = Guesses("report status tokens", 3, 60.0, 2, clock)
    for number in range(2):
        address = f"198.51.100.{number}"
        guesses.right(address, guesses.attempt(address), "token")
    with pytest.raises(RateLimited) as refused:
        guesses.right("203.0.113.1", guesses.attempt("203.0.113.1"), "token")
    assert refused.value.scope == "credential" and refused.value.retry_after == 3600
    guesses.right("203.0.113.1", guesses.attempt("203.0.113.1"), "another token")


def test_a_budget_refills_over_the_hour_and_forgets_full_buckets() -> None:
    clock = Clock()
    budget = Budget(3600, address=True, clock=clock)  # one a second
    assert budget.take("2001:db8::1", 3600) == 0.0
    assert budget.take("2001:db8::2", 10) == 10  # the same /64: ten seconds to wait
    clock.now += 10
    assert budget.take("2001:db8::2", 10) == 0.0
    assert math.isinf(budget.take("192.0.2.1", 3601))
    budget.give_back("2001:db8::3", 10)
    assert budget.take("2001:db8::4", 10) == 0.0
    clock.now += 3600
    assert budget.take("192.0.2.1", 1) == 0.0
    assert len(budget) == 1  # the /64's bucket was full again: forgotten
