from fairseq_weam.data.aligned_pair_dataset import AlignedPairDataset  # noqa: F401
from fairseq_weam.data.alignment import AlignmentError, project_alignments  # noqa: F401
from fairseq_weam.data.language_sampling import IndexSubsetDataset, temperature_probs  # noqa: F401
from fairseq_weam.data.masked_sentence_dataset import MaskedSentenceDataset  # noqa: F401
from fairseq_weam.data.masking import MaskingParams, build_mlm_example, build_weam_example  # noqa: F401
