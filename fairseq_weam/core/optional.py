"""Optional dependencies, imported one way everywhere.

transformers (export / import to Hugging Face, the QA fine-tune): fairseq requires torchaudio, and
pip often pairs it with a torch it was not built for (the newest torchaudio on PyPI does not load
against torch 2.13: its C++ extension fails with OSError). fairseq survives that, but transformers
imports torchaudio whenever the package is installed, and then its model classes fail to import.
When torchaudio is installed but cannot be imported, it is marked absent
(``sys.modules["torchaudio"] = None``, which ``importlib.util.find_spec`` reports as "not
installed") so transformers skips it; a working torchaudio is left alone.
"""

import importlib
import sys


def hide_broken_torchaudio() -> bool:
    """Returns True when torchaudio was broken and is now hidden from transformers."""
    if "torchaudio" in sys.modules:
        return sys.modules["torchaudio"] is None
    if importlib.util.find_spec("torchaudio") is None:
        return False
    try:
        importlib.import_module("torchaudio")
        return False
    except (ImportError, OSError, RuntimeError):
        for name in [m for m in sys.modules if m.startswith("torchaudio.")]:
            del sys.modules[name]
        sys.modules["torchaudio"] = None
        return True


def load_transformers():
    """The transformers module, importable even with a broken torchaudio installed."""
    hide_broken_torchaudio()
    tf = importlib.import_module("transformers")
    # Our own bars show the work; transformers' per-file load / save bars would interleave with them.
    tf.utils.logging.disable_progress_bar()
    return tf
