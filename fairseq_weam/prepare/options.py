"""The settings of a preparation, and the checks that need no input read."""

import os
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

from fairseq_weam.prepare import aligners, textio
from fairseq_weam.prepare.errors import PrepareError


@dataclass
class PrepareOptions:
    out: str
    trainpref: str
    validpref: Optional[str] = None
    lang_pairs: Optional[Sequence[Tuple[str, str]]] = None
    valid_size: int = 1000
    valid_max_share: float = 0.1
    spm_model: Optional[str] = None
    dictionary: Optional[str] = None
    vocab_size: int = 16000
    character_coverage: float = 0.9995
    model_type: str = "unigram"
    spm_sampling_alpha: float = 0.5
    spm_max_sentences: int = 100000
    split_cjk: Optional[bool] = None  # None: on, unless alignments are imported
    aligner: str = "fast_align"
    align_suffix: str = "align"
    align_iterations: int = 5
    max_positions: int = 256
    skip_bad_lines: bool = False
    overwrite: bool = False
    seed: int = 1
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    # fit: pairs per language pair that sentencepiece and the aligner are fitted on (0: all)
    sample_size: int = 0
    # lines per chunk of the streaming passes; memory grows with it, not with the corpus
    chunk_lines: int = 50000

    @property
    def imported(self) -> bool:
        return aligners.get(self.aligner).imported

    @property
    def resolved_split_cjk(self) -> bool:
        return (not self.imported) if self.split_cjk is None else self.split_cjk

    def check(self) -> None:
        aligners.get(self.aligner)  # an unknown name is refused
        if self.max_positions < 6:
            raise PrepareError("--max-positions must leave room for <s> x </s> </s> y </s>")
        if self.chunk_lines < 1:
            raise PrepareError("--chunk-lines must be at least 1")
        if self.sample_size < 0:
            raise PrepareError("--sample-size must be 0 (all) or positive")
        for p in (self.spm_model, self.dictionary):
            if p and not os.path.isfile(p):
                raise PrepareError(f"file not found: {p}")
        if self.dictionary and not self.spm_model:
            raise PrepareError("--dictionary needs the sentencepiece model it was made for (--spm-model)")


def resolve_pairs(opts: PrepareOptions) -> List[Tuple[str, str]]:
    pairs = list(opts.lang_pairs or textio.discover_pairs(opts.trainpref))
    if not pairs:
        raise PrepareError(
            f"no language pairs found for --trainpref {opts.trainpref}: expected files like "
            f"{opts.trainpref}.en-de.en and {opts.trainpref}.en-de.de (or {opts.trainpref}.en-de with 'en ||| de' "
            "lines)"
        )
    for s, t in pairs:
        for lang in (s, t):
            if not lang or any(c in lang for c in "-./ \t"):
                raise PrepareError(
                    f"invalid language code {lang!r} in pair {s}-{t} (fairseq file names forbid '-', '.', '/')"
                )
        if s == t:
            raise PrepareError(f"pair {s}-{t}: source and target languages must differ")
    if len(set(pairs)) != len(pairs):
        raise PrepareError(f"duplicate language pairs in {pairs}")
    return pairs
