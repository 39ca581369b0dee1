"""Zero-shot extractive QA (SQuAD -> MLQA / XQuAD) on a Hugging Face encoder.

``run_qa`` is the one call: a transformers model directory (e.g. written by the fairseq ->
transformers export), the English training file, the eval files, an output directory.
"""

from fairseq_weam.core.device import Precision, choose_precision
from fairseq_weam.evaluation.qa.finetune import FinetuneConfig, WindowConfig
from fairseq_weam.evaluation.qa.runner import run_qa

__all__ = ["FinetuneConfig", "Precision", "WindowConfig", "choose_precision", "run_qa"]
