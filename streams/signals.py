"""Events other apps subscribe to. `streams` knows neither incidents nor compensation.

Receivers run inside the sender's transaction, so what they write (timeline entries,
auto-opened incidents) commits or rolls back together with the action itself.
"""

from django.dispatch import Signal

# sender=ControlAction class, action=<ControlAction row>
control_action_recorded = Signal()
# sender=Alert class, alert=<Alert row>
alert_raised = Signal()
# sender=Alert class, alert=<Alert row>, user=<acknowledging user>
alert_acknowledged = Signal()
# sender=LiveRoom class, room=<LiveRoom>, old_status=str, new_status=str
room_status_changed = Signal()
