"""Zero-shot evaluation of pre-trained checkpoints: sentence retrieval, word-alignment quality,
XNLI, and the objective x sampling-alpha imbalance sweep with its tables and figures."""
