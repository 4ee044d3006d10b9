"""Focus policies: parsing, draws inside the valid depth range, seeding per sample."""

import numpy as np
import pytest

from defocuskit.errors import ConfigError
from defocuskit.focus import focus_policy_from_config, make_focus_policy, sample_rng

DEPTH = np.array([[0.7, 1.0, np.nan], [2.0, -1.0, 9.5], [np.inf, 3.0, 0.0]])


def test_fixed_and_stack_policies():
    assert make_focus_policy("fixed:2.0").draw(DEPTH, None).tolist() == [2.0]
    st = make_focus_policy("stack:1,2,4")
    assert st.k == 3 and st.draw(DEPTH, None).tolist() == [1.0, 2.0, 4.0]
    k5 = make_focus_policy("stack:5")
    d = k5.draw(DEPTH, None)
    assert k5.k == 5 and d[0] == pytest.approx(0.7) and d[-1] == pytest.approx(9.5)
    np.testing.assert_allclose(np.diff(1 / d), np.diff(1 / d)[0])  # even in dioptres


def test_random_draws_ignore_invalid_depth_and_stay_in_range():
    for spec in ("uniform", "histogram", "syndof"):
        pol = make_focus_policy(spec)
        rng = np.random.default_rng(0)
        draws = np.concatenate([pol.draw(DEPTH, rng) for _ in range(300)])
        assert pol.k == 1 and draws.min() >= 0.7 and draws.max() <= 9.5


def test_histogram_follows_the_depth_distribution():
    depth = np.full(1000, 8.0)
    depth[:900] = 1.0  # 90 % of the pixels at 1 m
    depth[0], depth[-1] = 0.9, 8.1
    rng = np.random.default_rng(1)
    pol = make_focus_policy("histogram")
    near = np.mean([pol.draw(depth, rng)[0] < 2 for _ in range(2000)])
    assert 0.86 < near < 0.94
    uni = make_focus_policy("uniform")
    assert np.mean([uni.draw(depth, rng)[0] < 2 for _ in range(2000)]) < 0.3


def test_sample_rng_is_per_sample_and_order_free():
    a = [sample_rng(5, "train", i).random() for i in range(4)]
    b = [sample_rng(5, "train", i).random() for i in reversed(range(4))][::-1]
    assert a == b and len(set(a)) == 4
    assert sample_rng(5, "test", 0).random() != a[0]
    assert sample_rng(6, "train", 0).random() != a[0]


@pytest.mark.parametrize("spec", ["fixed:2.0", "uniform", "histogram", "syndof", "syndof:0.01",
                                  "stack:4", "stack:1,3"])
def test_config_round_trip(spec):
    pol = make_focus_policy(spec)
    assert focus_policy_from_config(pol.to_config()) == pol


@pytest.mark.parametrize("spec", ["fixed", "fixed:-1", "stack:0", "stack:a,b", "gauss", 3,
                                  "syndof:-0.001", "syndof:mm"])
def test_bad_specs_raise(spec):
    with pytest.raises(ConfigError):
        make_focus_policy(spec)


def test_all_invalid_depth_raises():
    with pytest.raises(ConfigError, match="no valid"):
        make_focus_policy("uniform").draw(np.full((2, 2), np.nan), np.random.default_rng(0))
