"""edgesdk: deep-learning edge detection from research model to device.

    import edgesdk
    detector = edgesdk.load()            # the bundled int8 student (LiteRT)
    result = detector.detect("photo.jpg")
    result.edges, result.probability, result.timings
    result.save("out", "photo")          # out/photo_edges.png, out/photo_prob.png

Importing edgesdk never imports torch.
"""

from typing import TYPE_CHECKING

# The errors edgesdk raises on purpose (InputError: a bad file, array or argument, also a
# ValueError), so that callers can catch them without importing a submodule.
from edgesdk.errors import AcceleratorUnavailable, EdgeSDKError, InputError

__version__ = "0.2.0"
__all__ = ["load", "process", "Detector", "EdgeMap", "EdgeSDKError", "InputError", "AcceleratorUnavailable", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from edgesdk.batch import process
    from edgesdk.runtime import Detector, EdgeMap, load


def __getattr__(name: str):
    # Lazy: `import edgesdk` stays cheap for the evaluator and the CLI's --help.
    if name in ("load", "Detector", "EdgeMap"):
        from edgesdk import runtime

        return getattr(runtime, name)
    if name == "process":
        from edgesdk.batch import process

        return process
    raise AttributeError(f"module 'edgesdk' has no attribute {name!r}")
