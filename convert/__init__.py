"""Turn a trained edge model into files the runtime runs: int8/fp32 TFLite (LiteRT), TorchScript."""
