"""How many maps does one Detector shared by threads get wrong? (docs/results.md, stop 25)

The bundled model's maps of the three sample images and their two mirrors, computed once serially,
then five times by six threads sharing the Detector; prints how many threaded maps differ. Before
b8783d4 (no lock around LiteRT's runs) two runs gave 35 and 34 of 45 (40 and 37 with --low-memory;
it is a race, so the count varies); since: 0.

    python docs/scripts/threads-vs-serial.py [--low-memory]
"""

import argparse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

import edgesdk

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--low-memory", action="store_true")
args = ap.parse_args()
det = edgesdk.load(low_memory=args.low_memory)
arrays = []
for p in sorted((Path(__file__).resolve().parents[2] / "examples" / "bsds500-sample" / "images").glob("*.jpg")):
    bgr = cv2.imread(str(p))
    arrays += [bgr, np.ascontiguousarray(bgr[::-1]), np.ascontiguousarray(bgr[:, ::-1])]
serial = [det.probability(a, color="BGR") for a in arrays]
wrong = 0
with ThreadPoolExecutor(6) as pool:
    for _ in range(5):
        shared = pool.map(lambda a: det.probability(a, color="BGR"), arrays)
        wrong += sum(not np.array_equal(s, r) for s, r in zip(shared, serial))
print(f"{'low-memory' if args.low_memory else 'default'} mode: {wrong} of {5 * len(arrays)} threaded maps differ from the serial ones")
