"""The BSDS500 boundary benchmark (ODS, OIS, AP, R50) with the field's standard protocol.

Typical use from training code::

    from edgesdk.eval import evaluate, Protocol
    result = evaluate({"100007": prob_map}, {"100007": [gt1, gt2, ...]})
    print(result.ods_f, result.ois_f, result.ap)
"""

from edgesdk.eval.benchmark import default_workers, evaluate, evaluate_dir
from edgesdk.eval.counts import ImageCounts, image_counts
from edgesdk.eval.files import (
    pair_files, prediction_map, read_ground_truth, read_prediction, write_bsds_files, write_prediction,
    write_summary_json,
)
from edgesdk.eval.predict import predict_folder
from edgesdk.eval.metrics import ImageScore, Result, summarize
from edgesdk.eval.protocol import Protocol, parse_thresholds

__all__ = [
    "Protocol",
    "parse_thresholds",
    "ImageCounts",
    "image_counts",
    "ImageScore",
    "Result",
    "summarize",
    "evaluate",
    "evaluate_dir",
    "default_workers",
    "read_prediction",
    "write_prediction",
    "predict_folder",
    "prediction_map",
    "read_ground_truth",
    "pair_files",
    "write_bsds_files",
    "write_summary_json",
]
