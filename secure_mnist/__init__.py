"""secure_mnist: train a neural network on data nobody is allowed to see.

Two workers (alice and bob) hold additive secret shares over Z_2^64; a crypto provider deals the
correlated randomness that multiplication and comparison need. The tutorial's PySyft API is in
`secure_mnist.syft`; this module exposes the engine directly.
"""

from .autograd import AutogradTensor
from .encoding import FixedPointEncoder
from .errors import (
    CheckpointError,
    DealerPlanError,
    EncodingError,
    FixedPointOverflowError,
    NotSharedError,
    PartyMismatchError,
    PrecisionMismatchError,
    SecureMNISTError,
    SetupError,
)
from .mpc.fixed_point import FixedPrecisionTensor
from .mpc.session import Session
from .nn import decrypt_parameters, encrypt_parameters, share_batch
from .optim import SGD

__version__ = "0.1.0"

__all__ = [
    "AutogradTensor",
    "CheckpointError",
    "DealerPlanError",
    "EncodingError",
    "FixedPointEncoder",
    "FixedPointOverflowError",
    "FixedPrecisionTensor",
    "NotSharedError",
    "PartyMismatchError",
    "PrecisionMismatchError",
    "SGD",
    "SecureMNISTError",
    "Session",
    "SetupError",
    "decrypt_parameters",
    "encrypt_parameters",
    "share_batch",
]
