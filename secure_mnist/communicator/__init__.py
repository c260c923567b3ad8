"""How parties talk: every value one party learns from another passes through a Communicator.

`DistributedCommunicator` (separate processes over torch.distributed) is imported from
`secure_mnist.communicator.distributed`, so that the in-process engine never loads torch.distributed.
"""

from .base import Communicator, TrafficStats
from .in_process import InProcessCommunicator

__all__ = ["Communicator", "InProcessCommunicator", "TrafficStats"]
