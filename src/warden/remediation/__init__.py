"""The incident lifecycle the runtime mixes in, one part per module. Runtime.

``lifecycle`` (shared parts and state), ``planning`` (open and plan), ``driving``
(decide, act, retry, approvals), ``verifying`` and ``undoing`` (compensation).
"""

from warden.remediation.driving import Remediation, backoff_s
from warden.remediation.lifecycle import Folded, Lifecycle, RuntimeSettings

__all__ = ["Folded", "Lifecycle", "Remediation", "RuntimeSettings", "backoff_s"]
