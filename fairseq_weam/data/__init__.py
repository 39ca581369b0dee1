from .aligned_pair_dataset import AlignedPairDataset, word_start_mask  # noqa: F401
from .alignment import AlignmentError, project_alignments  # noqa: F401
from .language_sampling import IndexSubsetDataset, temperature_probs  # noqa: F401
from .masked_sentence_dataset import MaskedSentenceDataset  # noqa: F401
from .masking import MaskingParams, build_mlm_example, build_weam_example  # noqa: F401
