"""Hugging Face interop: export a fairseq RoBERTa / WEAM encoder to a transformers directory
(:mod:`.hf_export`), import an XLM-R-family transformers directory as a fairseq checkpoint
(:mod:`.hf_import`). The weight-name mapping (:mod:`.weights`) and the tokenizer
(:mod:`.hf_tokenizer`) are pure functions, tested on their own."""

from ..errors import WeamError


class InteropError(WeamError, ValueError):
    """An input that cannot be converted faithfully; the message names the file and the setting."""


def load_transformers():
    """``import transformers``, made to work next to a broken torchaudio.

    fairseq requires torchaudio, and pip often pairs it with a torch it was not built for; fairseq
    survives that, but transformers imports torchaudio as soon as the package exists and fails.
    Nothing here uses audio, so transformers is told torchaudio is absent when it cannot load.
    """
    import transformers

    if not getattr(load_transformers, "_checked", False):
        try:
            import torchaudio  # noqa: F401
        except (ImportError, OSError, RuntimeError):
            from transformers import utils
            from transformers.utils import import_utils

            utils.is_torchaudio_available = import_utils.is_torchaudio_available = lambda: False
        load_transformers._checked = True
    return transformers


def quiet_logs() -> None:
    """Keep the command's output to its own lines: fairseq's config conversion (hydra) warns
    about deprecations, and transformers reports every load."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", module=r"hydra\..*")
    warnings.filterwarnings("ignore", category=UserWarning, message=".*(hydra|version_base|ConfigStore|strict flag).*")
    for name in ("hydra", "fairseq", "transformers"):
        logging.getLogger(name).setLevel(logging.WARNING)

