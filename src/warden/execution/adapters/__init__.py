"""Action adapters: how approved steps reach real targets. Action plane (execution).

One adapter module per kind of target, each implementing the ``ActionAdapter`` port;
`base` holds what they share and `registry` builds them from configuration.
"""

from warden.execution.adapters.process import AdapterStatistics, LocalProcessAdapter
from warden.execution.adapters.process_supervision import ProcessSpec, ProcessStatistics

__all__ = ["AdapterStatistics", "LocalProcessAdapter", "ProcessSpec", "ProcessStatistics"]
