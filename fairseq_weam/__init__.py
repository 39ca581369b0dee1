"""fairseq-weam: WEAM bilingual-alignment pre-training as a fairseq ``--user-dir`` plugin.

Importing the package (``--user-dir fairseq_weam`` does) registers the ``weam`` task and
criterion and makes fairseq's checkpoint loading safe on torch >= 2.6.
"""

from fairseq_weam.core import checkpoint_safety

checkpoint_safety.install()

from fairseq_weam import criterions, tasks  # noqa: E402,F401  (registration side effects)

__version__ = "0.1.0"
