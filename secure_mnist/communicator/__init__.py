"""How parties talk: every value one party learns from another passes through a Communicator."""

from .base import Communicator, TrafficStats
from .in_process import InProcessCommunicator

__all__ = ["Communicator", "InProcessCommunicator", "TrafficStats"]
