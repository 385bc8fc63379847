"""edgesdk: deep-learning edge detection from research model to device.

Importing edgesdk never imports torch.
"""

__version__ = "0.1.0"
