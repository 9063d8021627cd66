"""Events other apps subscribe to. `streams` knows neither incidents nor compensation.

streams.services sends them after the sender's transaction commits (send_robust): a receiver's
writes (timeline entries, auto-opened incidents) are its own transaction, and its failure is logged
without undoing the action or its audit row.
"""

from django.dispatch import Signal

# sender=ControlAction class, action=<ControlAction row>
control_action_recorded = Signal()
# sender=Alert class, alert=<Alert row>
alert_raised = Signal()
# sender=Alert class, alert=<Alert row>: an open alert was raised again (alert.count, alert.last_seen_at)
alert_repeated = Signal()
# sender=Alert class, alert=<Alert row>, user=<acknowledging user>
alert_acknowledged = Signal()
# sender=LiveRoom class, room=<LiveRoom>, old_status=str, new_status=str
room_status_changed = Signal()
