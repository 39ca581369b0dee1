"""Console entry points (thin wrappers over ``fairseq_weam.evaluation`` and friends)."""
