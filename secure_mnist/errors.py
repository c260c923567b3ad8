"""Every error secure_mnist raises on purpose, so callers can catch them precisely."""


class SecureMNISTError(Exception):
    """Base class of the package's own errors."""


class FixedPointOverflowError(SecureMNISTError, OverflowError):
    """A value left the range a fixed-point ring element can hold: it would wrap around silently."""


class EncodingError(SecureMNISTError, ValueError):
    """A value cannot be encoded faithfully: NaN or infinity, or a public factor or divisor the
    precision would round away (see mpc/public.py)."""


class PrecisionMismatchError(SecureMNISTError, ValueError):
    """Two fixed-point tensors with different scales were combined."""


class PartyMismatchError(SecureMNISTError, ValueError):
    """Two shared tensors held by different groups of parties were combined."""


class NotSharedError(SecureMNISTError, TypeError):
    """A tensor is in the wrong state for the operation: public where shares are needed (get,
    refresh, comparisons), or still shared where a plaintext value is needed (float_precision)."""


class SetupError(SecureMNISTError, ValueError):
    """The parties were set up in a way the protocols do not support."""


class CheckpointError(SecureMNISTError, ValueError):
    """A checkpoint cannot be resumed from: missing, unreadable, another party's, run's or epoch's,
    other settings, or a tensor of the wrong shape or dtype (the message names the file and tensor)."""


class DealerPlanError(SecureMNISTError, RuntimeError):
    """The crypto provider dealt for other requests than a worker made: the parties are out of step
    (another version or other settings). Raised before anything of the step is revealed."""
