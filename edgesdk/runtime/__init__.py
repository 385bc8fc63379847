"""The on-device runtime: load a model file, detect edges. No torch needed (LiteRT runs .tflite)."""

from edgesdk.runtime.detector import DEFAULT_MODEL, Detector, EdgeMap, load
from edgesdk.runtime.metadata import ModelInfo, list_models, read_model_info

__all__ = ["load", "Detector", "EdgeMap", "ModelInfo", "list_models", "read_model_info", "DEFAULT_MODEL"]
