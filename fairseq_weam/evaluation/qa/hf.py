"""Importing transformers next to a torchaudio that cannot load.

fairseq requires torchaudio, and the newest torchaudio on PyPI (2.11) does not load against
torch 2.13 (its C++ extension fails with OSError). transformers imports torchaudio whenever the
package is installed, so its model classes fail to import. When torchaudio is installed but
cannot be imported, mark it absent (``sys.modules["torchaudio"] = None``, which
``importlib.util.find_spec`` reports as "not installed") so transformers skips it; a working
torchaudio is left alone.
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


def transformers():
    """The transformers module, importable even with a broken torchaudio installed."""
    hide_broken_torchaudio()
    tf = importlib.import_module("transformers")
    # Our own bars show the work; transformers' per-file load / save bars would interleave with them.
    tf.utils.logging.disable_progress_bar()
    return tf
