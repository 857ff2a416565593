"""Replay: a recorded history through today's agents and policies, with a decision diff. App layer.

``driver`` feeds what came from outside to a fresh runtime on its own clock and answers
actions from the record; ``diff`` compares the incidents, plans and decisions.
"""

from warden.replay.diff import Difference, IncidentView, ReplayReport, compare
from warden.replay.driver import RecordedOutcomes, is_input, replay

__all__ = [
    "Difference",
    "IncidentView",
    "RecordedOutcomes",
    "ReplayReport",
    "compare",
    "is_input",
    "replay",
]
