"""Action adapters: how approved steps reach real targets. Action plane (execution).

One module per kind of target; each implements the ``ActionAdapter`` port.
"""

from warden.execution.adapters.process import (
    AdapterStatistics,
    LocalProcessAdapter,
    ProcessSpec,
    ProcessStatistics,
)

__all__ = ["AdapterStatistics", "LocalProcessAdapter", "ProcessSpec", "ProcessStatistics"]
