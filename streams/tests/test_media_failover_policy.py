"""The failover policy on synthetic timelines (no network, no event loop): switch, hold, revert, and a late
process that must not be mistaken for a failed line."""

from streams.media.common import RoomSettings
from streams.media.failover import FailoverPolicy, LineView, ProcessLoad
from streams.media.load import LoopMonitor

OK = LineView(trigger=None, has_picture=True, on_air_once=True, gap_ms=30)
LATE = ProcessLoad(late=True, lag_ms=250, backlog=0)
PUNCTUAL = ProcessLoad()


def lost(gap_ms=400, gone=False):
    return LineView(trigger="input_loss", has_picture=True, on_air_once=True, gap_ms=gap_ms, publisher_gone=gone)


def run(policy, t0, t1, views, load=PUNCTUAL, source=None, selected_by=None, step=0.025):
    """Evaluate every 25 ms from t0 to t1 like the room does (a switch changes the program source);
    return [(t, decision)]."""
    state = policy.__dict__.setdefault("_test_program", {"source": "primary", "by": "initial"})
    if source is not None:
        state.update(source=source, by=selected_by or "manual")
    out = []
    for i in range(round((t1 - t0) / step)):
        t = round(t0 + i * step, 6)
        for d in policy.evaluate(t, state["source"], state["by"], state["source"] == "slate", views, load):
            out.append((t, d))
            if d.kind == "switch":
                state.update(source=d.target, by="auto")
    return out


def kinds(decisions):
    return [d.kind for _, d in decisions]


def test_a_line_that_stops_on_a_punctual_process_is_switched_at_once():
    policy = FailoverPolicy(RoomSettings())
    run(policy, 0, 1, {"primary": OK, "backup": OK})
    decisions = run(policy, 1, 1.05, {"primary": lost(320), "backup": OK})
    assert kinds(decisions) == ["switch"]
    (t, switch), = decisions
    assert t == 1 and switch.target == "backup" and switch.trigger == "input_loss"
    assert switch.detail == {"line": "primary", "input_gap_ms": 320}


def test_a_late_process_holds_once_per_episode_and_still_switches_a_dead_line_in_bounded_time():
    policy = FailoverPolicy(RoomSettings(), overload_max_hold_s=2.0)
    run(policy, 0, 1, {"primary": OK, "backup": OK})
    decisions = run(policy, 1, 4, {"primary": lost(), "backup": OK}, load=LATE)
    assert kinds(decisions) == ["overload", "switch"]  # one event for the episode, not one per evaluation
    (t_hold, hold), (t_switch, switch) = decisions
    assert t_hold == 1 and hold.detail["phase"] == "started" and hold.detail["lag_ms"] == 250
    assert policy.overload.refused == 1
    assert 2.99 <= t_switch <= 3.01  # held for at most overload_max_hold_s
    assert switch.target == "backup" and switch.detail["held_for_lateness_ms"] == 2000


def test_lateness_that_passes_costs_no_switch_and_the_episode_reports_its_refusals_when_it_ends():
    policy = FailoverPolicy(RoomSettings(), overload_max_hold_s=2.0, overload_calm_s=2.0)
    views_ok = {"primary": OK, "backup": OK}
    run(policy, 0, 1, views_ok)
    decisions = run(policy, 1, 1.5, {"primary": lost(), "backup": OK}, load=LATE)  # starved for 0.5 s
    decisions += run(policy, 1.5, 1.7, views_ok, load=LATE)  # frames flow again, the lag is still recent
    decisions += run(policy, 1.7, 2.2, {"primary": lost(), "backup": OK}, load=LATE)  # a second starved spell
    decisions += run(policy, 2.2, 6, views_ok)  # punctual again
    assert kinds(decisions) == ["overload", "overload_ended"]
    ended = decisions[-1][1]
    assert ended.detail["phase"] == "ended" and ended.detail["refused"] == 2
    assert 4.1 <= decisions[-1][0] <= 4.3  # after overload_calm_s of punctuality
    assert not policy.overloaded


def test_ongoing_overload_reports_are_coalesced():
    policy = FailoverPolicy(RoomSettings(), overload_max_hold_s=2.0, report_every_s=30.0)
    run(policy, 0, 1, {"primary": OK, "backup": OK})
    decisions = []
    t = 1.0
    for _ in range(120):  # two minutes of short starved spells, 0.5 s each, every second
        decisions += run(policy, t, t + 0.5, {"primary": lost(), "backup": OK}, load=LATE, step=0.05)
        decisions += run(policy, t + 0.5, t + 1, {"primary": OK, "backup": OK}, load=LATE, step=0.05)
        t += 1
    assert "switch" not in kinds(decisions)
    phases = [d.detail["phase"] for _, d in decisions]
    assert phases == ["started", "ongoing", "ongoing", "ongoing"]  # every 30 s, never per attempt
    assert [d.detail["refused"] for _, d in decisions[1:]] == [30, 60, 90]


def test_an_unambiguous_fault_is_not_held_for_lateness():
    policy = FailoverPolicy(RoomSettings())
    run(policy, 0, 1, {"primary": OK, "backup": OK})
    black = LineView(trigger="black", has_picture=True, on_air_once=True, gap_ms=20)
    assert kinds(run(policy, 1, 1.05, {"primary": black, "backup": OK}, load=LATE)) == ["overload", "switch"]
    policy = FailoverPolicy(RoomSettings())
    run(policy, 0, 1, {"primary": OK, "backup": OK})
    assert kinds(run(policy, 1, 1.05, {"primary": lost(gone=True), "backup": OK}, load=LATE)) == ["overload", "switch"]


def test_a_punctual_process_does_not_wait_out_an_earlier_hold():
    policy = FailoverPolicy(RoomSettings(), overload_max_hold_s=2.0)
    run(policy, 0, 1, {"primary": OK, "backup": OK})
    decisions = run(policy, 1, 1.5, {"primary": lost(), "backup": OK}, load=LATE)
    decisions += run(policy, 1.5, 1.6, {"primary": lost(), "backup": OK})  # now punctual: the line's own fault
    assert kinds(decisions) == ["overload", "switch"] and decisions[-1][0] == 1.5


def test_anti_flap_hold_is_raised_once_and_counts_refusals_until_the_line_is_healthy():
    policy = FailoverPolicy(RoomSettings(max_auto_switches=1, auto_switch_window_s=60))
    run(policy, 0, 1, {"primary": OK, "backup": OK})
    assert kinds(run(policy, 1, 1.05, {"primary": lost(), "backup": OK})) == ["switch"]
    black = LineView(trigger="black", has_picture=True, on_air_once=True, gap_ms=20)
    decisions = run(policy, 2, 3, {"primary": OK, "backup": black})
    assert kinds(decisions) == ["hold"] and decisions[0][1].detail["wanted"] == "primary"
    assert policy.holding
    decisions = run(policy, 3, 4, {"primary": OK, "backup": lost()})
    assert decisions == []  # another fault, still held, counted
    decisions = run(policy, 4, 4.1, {"primary": OK, "backup": OK})
    assert kinds(decisions) == ["hold_ended"] and decisions[0][1].detail["refused"] == 2
    assert not policy.holding


def test_primary_preferred_reverts_after_primary_is_healthy_for_revert_after_s():
    policy = FailoverPolicy(RoomSettings(revert_after_s=10))
    run(policy, 0, 1, {"primary": OK, "backup": OK})
    run(policy, 1, 1.05, {"primary": lost(), "backup": OK})
    decisions = run(policy, 2, 13, {"primary": OK, "backup": OK})
    assert kinds(decisions) == ["switch"] and decisions[0][1].trigger == "revert"
    assert 11.99 <= decisions[0][0] <= 12.01
    policy = FailoverPolicy(RoomSettings(revert_mode="sticky"))
    assert run(policy, 0, 20, {"primary": OK, "backup": OK}, source="backup", selected_by="auto") == []


def test_not_armed_before_the_line_was_ever_on_air():
    policy = FailoverPolicy(RoomSettings())
    never = LineView(trigger="input_loss", has_picture=False, on_air_once=False)
    assert run(policy, 0, 5, {"primary": never, "backup": OK}) == []


def test_loop_monitor_leaves_its_own_lateness_out_of_a_gap():
    monitor = LoopMonitor(tick_s=0.01)
    monitor.expected = 10.01
    monitor.record(10.01)  # punctual
    monitor.record(10.02)
    monitor.record(10.43)  # this tick came 0.4 s late (the loop stalled from 10.03 to 10.43)
    assert round(monitor.stalled_between(10.0, 10.44), 3) == 0.4
    assert round(monitor.observed(10.0, 10.44), 3) == 0.04  # only 40 ms of the 440 ms gap was observable
    assert round(monitor.stalled_between(10.2, 10.44), 3) == 0.23  # a stall straddling t0 counts in part
    assert round(monitor.max_lag(10.44), 2) == 0.4
    for i in range(1, 118):
        monitor.record(10.43 + i * 0.01)  # punctual ticks until 11.6
    assert monitor.max_lag(11.6) == 0.0  # the stall is more than a second old
    # a stall still under way (the ticker has not run since 11.6) counts too
    assert round(monitor.stalled_between(11.6, 12.05), 3) == 0.44
    assert round(monitor.max_lag(12.05), 2) == 0.44
    assert monitor.observed(10.5, 10.4) == 0.0  # never negative
    assert LoopMonitor().observed(1.0, 1.5) == 0.5  # a monitor that never ran counts no lateness


def test_lateness_never_makes_a_stalled_line_look_recovered():
    policy = FailoverPolicy(RoomSettings(revert_after_s=1))
    run(policy, 0, 1, {"primary": OK, "backup": OK})
    assert kinds(run(policy, 1, 1.05, {"primary": lost(), "backup": OK})) == ["switch"]
    # primary still stalled, but its gap is excused by our own lateness (no trigger): not healthy for revert
    excused = LineView(trigger=None, has_picture=True, on_air_once=True, gap_ms=100, healthy=False)
    assert run(policy, 1.05, 5, {"primary": excused, "backup": OK}) == []
    decisions = run(policy, 5, 7, {"primary": OK, "backup": OK})
    assert kinds(decisions) == ["switch"] and decisions[0][1].trigger == "revert" and 5.99 <= decisions[0][0] <= 6.01
