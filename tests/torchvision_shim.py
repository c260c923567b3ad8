"""Import torchvision next to a CPU-only torch, for tests.

The torchvision wheel on PyPI is a CUDA build.  Next to the CPU torch its C++
extension does not load, so its C++ operators are never registered, and
``import torchvision`` fails while registering fake kernels for two of them
(``RuntimeError: operator torchvision::nms does not exist``).  Declaring
those two schemas first is enough to import it; the datasets and transforms
used by the tests are pure Python and work normally.  Calling the detection
operators themselves (``torchvision.ops.nms``, ...) still fails.
"""

from __future__ import annotations

import sys
from types import ModuleType

import torch

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)

# Kept alive for the whole process: dropping it would unregister the schemas.
_library: torch.library.Library | None = None


def import_torchvision() -> ModuleType:
    """Return the torchvision module, declaring missing operator schemas only if needed.

    Raises ImportError (ModuleNotFoundError) if torchvision is not installed.
    """
    global _library
    try:
        import torchvision
    except RuntimeError as error:
        if "torchvision::" not in str(error):
            raise
    else:
        return torchvision

    # Forget the half-imported package, declare the operators, import again.
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]
    if _library is None:
        _library = torch.library.Library("torchvision", "DEF")
        for schema in _SCHEMAS:
            _library.define(schema)
    import torchvision

    return torchvision
