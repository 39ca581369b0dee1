"""The objective terms of the ``weam`` criterion, one module each (see ``base.py`` for the seam
and docs/architecture.md for how to add one)."""

# Registration order is the order terms are computed and logged.
from fairseq_weam.objectives import masked_prediction, sentence_contrastive, word_contrastive, word_exchange  # noqa: F401,E402
from fairseq_weam.objectives.base import TERM_CONFIGS, TERMS, ObjectiveTerm, TermResult, register_term  # noqa: F401
