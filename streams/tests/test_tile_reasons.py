"""A tile says why a line is degraded or down, with the figure that crossed its limit, in the user's language."""

from django.utils import translation

from streams.wall import line_view

COLLAPSING = {"connected": True, "state": "degraded", "fps": 4.0, "jitter_ms": 210.0, "trigger": None,
              "reasons": [{"reason": "low_fps", "value": 4.0, "limit": 18.0},
                          {"reason": "jitter", "value": 210.0, "limit": 50}]}
LOST = {"connected": True, "state": "down", "trigger": "input_loss",
        "reasons": [{"reason": "input_loss", "value": 900, "limit": 250}]}


def test_a_collapsing_line_is_degraded_and_the_tile_says_why():
    with translation.override("zh-hans"):
        line = line_view("primary", COLLAPSING, stale=False, on_air=True)
        assert line["state_label"] == "劣化"
        assert line["flags"] == ["帧率低 4.0(应 ≥ 18.0)", "抖动 210.0 毫秒(应 ≤ 50)"]
    with translation.override("en"):
        assert line_view("primary", COLLAPSING, stale=False, on_air=True)["flags"][0] == \
            "Low frame rate 4.0 (should be ≥ 18.0)"


def test_a_lost_input_is_said_once_and_a_stale_tile_claims_nothing():
    with translation.override("zh-hans"):
        assert line_view("primary", LOST, stale=False, on_air=True)["flags"] == ["无画面 900 毫秒"]
        assert line_view("primary", LOST, stale=True, on_air=True)["flags"] == []
