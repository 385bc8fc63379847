"""Run an edge model over a folder of images and save probability maps as 16-bit PNGs.

    python -m training.predict --model hed --images ../shared/data/BSDS500/images/test --out runs/hed-test
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import torch

from edgesdk.eval import write_prediction
from training.evaluate import predict
from training.models.hed import HED
from training.paths import bsds500_dir, weights_path


def load_model(name: str, weights: Path | None) -> torch.nn.Module:
    if name != "hed":
        raise ValueError(f"unknown model {name!r}")
    path = weights or weights_path("hed_bsds500_vgg16.pth")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: HED weights not found (see ../shared/weights/README.md)")
    model = HED()
    model.load_hed_weights(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="hed")
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--images", type=Path, default=bsds500_dir() / "images" / "test")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.model, args.weights).to(memory_format=torch.channels_last)
    args.out.mkdir(parents=True, exist_ok=True)
    paths = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    start = time.perf_counter()
    for i, p in enumerate(paths):
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{p}: not a readable image")
        prob = predict(model, bgr)  # padded to the stride, as evaluation and the runtime do
        write_prediction(args.out / (p.stem + ".png"), prob)
        print(f"\r{i + 1}/{len(paths)} {time.perf_counter() - start:.0f}s", end="", flush=True)
    print()


if __name__ == "__main__":
    main()
