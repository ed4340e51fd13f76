from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookwise.poller import AdaptiveInterval


def test_starts_at_min_every_and_slows_down_while_quiet() -> None:
    interval = AdaptiveInterval(10, 100)
    assert interval.current == 10
    assert [interval.observe(changed=False) for _ in range(7)] == [
        15.0,
        22.5,
        33.75,
        50.625,
        75.9375,
        100.0,
        100.0,
    ]


def test_a_change_snaps_back() -> None:
    interval = AdaptiveInterval(10, 100, slow_factor=3, start=90)
    assert interval.observe(changed=False) == 100
    assert interval.observe(changed=True) == 10
    assert interval.current == 10


def test_fixed_interval() -> None:
    interval = AdaptiveInterval("1m", "1m")
    assert interval.observe(changed=False) == 60
    assert interval.observe(changed=True) == 60


def test_durations_in_every_form() -> None:
    interval = AdaptiveInterval(timedelta(seconds=30), "5m", start="1m")
    assert (interval.min_every, interval.max_every, interval.current) == (30, 300, 60)


def test_slow_factor_one_keeps_the_interval() -> None:
    interval = AdaptiveInterval(10, 100, slow_factor=1)
    assert interval.observe(changed=False) == 10


def test_detection_latency_bound_is_the_current_interval() -> None:
    interval = AdaptiveInterval(10, 100, slow_factor=2)
    assert interval.detection_latency_bound == 10
    interval.observe(changed=False)
    assert interval.detection_latency_bound == 20


def test_api_floor_raises_the_interval_even_past_max_every() -> None:
    interval = AdaptiveInterval(10, 60, slow_factor=2)
    assert interval.floor(30) == 30
    assert interval.api_floor == 30
    assert interval.observe(changed=True) == 30  # snaps back to the floor, not min_every
    assert interval.observe(changed=False) == 60
    assert interval.floor(90) == 90
    assert interval.observe(changed=False) == 90
    assert interval.observe(changed=True) == 90
    assert interval.floor(None) == 60  # back within max_every
    assert interval.observe(changed=True) == 10


def test_floor_zero_removes_it_and_floor_below_current_keeps_current() -> None:
    interval = AdaptiveInterval(10, 60, start=40)
    assert interval.floor(20) == 40
    assert interval.floor(0) == 40
    assert interval.api_floor == 0


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((0, 10), {}, "min_every must be a positive"),
        ((10, 0), {}, "max_every must be a positive"),
        ((-1, 10), {}, "negative"),
        ((20, 10), {}, "longer than max_every"),
        ((10, 20), {"slow_factor": 0.5}, "slow_factor must be at least 1"),
        ((10, 20), {"start": 5}, "start"),
        ((10, 20), {"start": 30}, "start"),
        (("ten", 20), {}, "min_every"),
        ((float("inf"), float("inf")), {}, "finite"),
    ],
)
def test_invalid_arguments(
    args: tuple[object, object], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        AdaptiveInterval(*args, **kwargs)  # type: ignore[arg-type]


def test_invalid_floor() -> None:
    interval = AdaptiveInterval(10, 20)
    with pytest.raises(ValueError):
        interval.floor(-1)
    with pytest.raises(ValueError):
        interval.floor(float("nan"))


@given(
    low=st.floats(0.1, 1000),
    spread=st.floats(1, 100),
    factor=st.floats(1, 10),
    outcomes=st.lists(st.booleans(), max_size=60),
    floors=st.lists(st.none() | st.floats(0, 5000), max_size=5),
)
def test_interval_always_within_bounds(
    low: float,
    spread: float,
    factor: float,
    outcomes: list[bool],
    floors: list[float | None],
) -> None:
    high = low * spread
    interval = AdaptiveInterval(low, high, slow_factor=factor)
    for step, changed in enumerate(outcomes):
        if floors and step % 7 == 0:
            interval.floor(floors[step % len(floors)])
        value = interval.observe(changed)
        floor = interval.api_floor
        assert max(low, floor) <= value <= max(high, floor)
        assert value == interval.current == interval.detection_latency_bound
        if changed:
            assert value == max(low, floor)
