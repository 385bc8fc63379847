"""Peak RSS of one Detector as it meets every size bucket of the bundled model (docs/results.md, stop 26).

LiteRT keeps each signature's tensors and XNNPACK's buffers once it has run, so in the default mode
a process that has seen every bucket holds all of them; low-memory mode rebuilds the large buffers on
every run. Prints the process's peak RSS after each image (1000x1000, then one image per bucket, then
1000x1000 again). On stop 26's VM: default 436 -> 714 MB, low memory 162 -> 171 MB.

    python docs/scripts/bucket-memory.py [--low-memory]
"""

import argparse
import resource

import numpy as np

import edgesdk

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--low-memory", action="store_true")
args = ap.parse_args()
det = edgesdk.load(low_memory=args.low_memory)
rng = np.random.default_rng(0)
for h, w in [(1000, 1000), (321, 481), (481, 321), (480, 640), (640, 480), (1000, 1000)]:
    det.detect(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    print(f"{w}x{h}: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
