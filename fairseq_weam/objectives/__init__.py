"""The objective terms of the ``weam`` criterion, one module each (see ``base.py`` for the seam
and docs/architecture.md for how to add one)."""

from .base import TERM_CONFIGS, TERMS, ObjectiveTerm, TermResult, register_term  # noqa: F401

# Registration order is the order terms are computed and logged.
from . import masked_prediction, word_exchange, sentence_contrastive, word_contrastive  # noqa: F401,E402
