"""Exceptions raised for bad input; the CLI turns them into a message and a non-zero exit."""


class EdgeSDKError(Exception):
    """Base class of the errors edgesdk raises on purpose."""


class InputError(EdgeSDKError, ValueError):
    """A file or array given by the user cannot be used (the message names it and says why)."""


class AcceleratorUnavailable(EdgeSDKError):
    """The device asked for (``load(..., device="gpu")`` or ``"npu"``) is not on this machine, or the runtime cannot use it."""
