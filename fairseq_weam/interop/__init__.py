"""Hugging Face interop: export a fairseq RoBERTa / WEAM encoder to a transformers directory
(:mod:`.hf_export`), import an XLM-R-family transformers directory as a fairseq checkpoint
(:mod:`.hf_import`). The weight-name mapping (:mod:`.weights`) and the tokenizer
(:mod:`.hf_tokenizer`) are pure functions, tested on their own."""

from fairseq_weam.core.errors import WeamError


class InteropError(WeamError, ValueError):
    """An input that cannot be converted faithfully; the message names the file and the setting."""


def quiet_logs() -> None:
    """Keep the command's output to its own lines: fairseq's config conversion (hydra) warns
    about deprecations, and transformers reports every load."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", module=r"hydra\..*")
    warnings.filterwarnings("ignore", category=UserWarning, message=".*(hydra|version_base|ConfigStore|strict flag).*")
    for name in ("hydra", "fairseq", "transformers"):
        logging.getLogger(name).setLevel(logging.WARNING)
