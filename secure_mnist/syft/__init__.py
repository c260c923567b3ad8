"""PySyft 0.2's API, as the tutorial uses it: `from secure_mnist import syft as sy`.

`sy.TorchHook(torch)` adds `fix_precision`/`share`/`get`/`float_precision` (and their in-place
forms) to torch tensors, nn modules and optimizers, as PySyft did; `sy.local_worker` is the client. Everything underneath is secure_mnist's own engine;
without the hook, the same engine is used through `secure_mnist.Session` and friends.
"""

from .hook import TorchHook, VirtualWorker, local_worker

__all__ = ["TorchHook", "VirtualWorker", "local_worker"]
