"""Judge a trained run: reconstruction metrics, ELBO and importance-sampled NLL, anomaly scores, pictures."""

from __future__ import annotations

from aelab.evaluation.detect import SCORES, Detection, csv_text, detect
from aelab.evaluation.metrics import METRICS, Metric
from aelab.evaluation.nll import LikelihoodEstimate, importance_sampled
from aelab.evaluation.report import Evaluation, MetricSummary, Outputs, eval_rows, evaluate, run_dataset

__all__ = ["METRICS", "SCORES", "Detection", "Evaluation", "LikelihoodEstimate", "Metric", "MetricSummary",
           "Outputs", "csv_text", "detect", "eval_rows", "evaluate", "importance_sampled", "run_dataset"]
