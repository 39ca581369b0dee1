"""A transformers tokenizer that gives exactly the ids of our data pipeline.

Our pipeline encodes a raw line as ``pretokenize`` (every whitespace character becomes a space,
spaces around each CJK character when the data dir's summary.json says ``split_cjk``), then
sentencepiece (its own normalization, e.g. nmt_nfkc, then unigram Viterbi), then the piece ->
``dict.txt`` id table, framed ``<s> x </s>`` (pairs ``<s> a </s> </s> b </s>``).

The `tokenizers` pipeline built here is the same, stage by stage:

* normalizer: Python's whitespace -> space; CJK spacing as a zero-width regex replace (a
  per-character rewrite, unlike a charsmap, which works on graphemes and would drop a combining
  mark after a CJK character); collapse spaces; the sentencepiece model's own precompiled charsmap;
  collapse again; the dummy-prefix ``▁`` (sentencepiece adds it unconditionally, also before a
  literal ``▁``); spaces -> ``▁``;
* pre-tokenizer: split before every ``▁`` (sentencepiece's ``split_by_whitespace``);
* model: Unigram over the sentencepiece pieces and scores, but with *our* dictionary's ids, so the
  count-sorted ``dict.txt`` needs no remapping; ``<mask>`` last, as the weam task adds it;
* post-processor: the RoBERTa / XLM-R framing.

Dictionary entries that are not sentencepiece pieces (fairseq's ``madeupwordNNNN`` padding, a
foreign dictionary's extra symbols) must keep their ids but can never be produced by
sentencepiece; they are stored with the prefix ``▁▁``, which no pre-token contains, so the Unigram
model cannot produce them either (and the importer strips it again). What cannot be expressed is
refused: a sentencepiece piece missing from dict.txt (fairseq maps it to ``<unk>`` *after*
segmentation), BPE / byte-fallback / user-defined pieces, non-default whitespace handling.
"""

import functools
import os
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
from fairseq.data import Dictionary

from fairseq_weam.core.data_dir import PreparedData, spm_to_dict
from fairseq_weam.core.pretokenize import CJK_CHARS, pretokenize
from fairseq_weam.data.masking import WORD_START
from fairseq_weam.interop import InteropError

UNREACHABLE = WORD_START * 2  # prefix of dictionary entries that are not sentencepiece pieces
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")  # fairseq's Dictionary: ids 0..3
MASK = "<mask>"


def load_spm_proto(path: str):
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    with open(path, "rb") as f:
        try:
            proto.ParseFromString(f.read())
        except Exception as e:  # protobuf's DecodeError
            raise InteropError(f"{path}: not a sentencepiece model ({e})") from None
    return proto


def check_spm(proto, path: str) -> None:
    """Refuse sentencepiece settings the `tokenizers` pipeline below does not reproduce."""
    t, n = proto.trainer_spec, proto.normalizer_spec
    problems = []
    if t.model_type != t.UNIGRAM:
        problems.append(f"model_type {t.ModelType.Name(t.model_type)} (only UNIGRAM is exported)")
    if t.byte_fallback:
        problems.append("byte_fallback")
    if t.treat_whitespace_as_suffix:
        problems.append("treat_whitespace_as_suffix")
    if not t.split_by_whitespace:
        problems.append("split_by_whitespace=false")
    if t.allow_whitespace_only_pieces:
        problems.append("allow_whitespace_only_pieces")
    if not (n.add_dummy_prefix and n.remove_extra_whitespaces and n.escape_whitespaces):
        problems.append("non-default add_dummy_prefix / remove_extra_whitespaces / escape_whitespaces")
    kinds = {p.type for p in proto.pieces}
    for kind in ("USER_DEFINED", "BYTE"):
        if proto.SentencePiece.Type.Value(kind) in kinds:
            problems.append(f"{kind} pieces")
    if problems:
        raise InteropError(f"{path}: cannot be expressed as a transformers tokenizer: {', '.join(problems)}")


def vocabulary(proto, dictionary: Dictionary, spm_path: str = "spm.model") -> List[Tuple[str, float]]:
    """The Unigram vocabulary in dictionary id order: (piece, sentencepiece score) per id.

    ``dictionary`` is fairseq's (specials 0..3, dict.txt, then ``<mask>`` as the task adds it).
    """
    normal = proto.SentencePiece.Type.Value("NORMAL")
    scores = {p.piece: p.score for p in proto.pieces if p.type == normal}
    symbols = list(dictionary.symbols)
    if symbols[:4] != list(SPECIALS) or symbols[-1] != MASK:
        raise InteropError(
            f"dictionary must start with {SPECIALS} and end with {MASK}, got {symbols[:4]} ... {symbols[-1]}"
        )
    missing = [p for p in scores if dictionary.index(p) == dictionary.unk()]
    if missing:
        raise InteropError(
            f"{spm_path}: {len(missing)} sentencepiece piece(s) are not in dict.txt (e.g. {missing[:3]}); fairseq maps "
            "them to <unk> after segmentation, which a transformers Unigram tokenizer cannot express"
        )
    vocab = []
    for sym in symbols:
        if sym in SPECIALS or sym == MASK:
            vocab.append((sym, 0.0))
        elif sym in scores:
            vocab.append((sym, float(scores[sym])))
        else:
            vocab.append((UNREACHABLE + sym, 0.0))
    return vocab


@functools.lru_cache(maxsize=1)
def _python_whitespace_class() -> str:
    # str.split() also splits on \x1c-\x1f, which Unicode's White_Space (a regex's \s) lacks.
    chars = [c for c in range(0x110000) if chr(c).isspace()]
    return "[" + "".join(f"\\x{{{c:X}}}" for c in chars) + "]"


def build_normalizer(proto, split_cjk: bool):
    from tokenizers import Regex, normalizers

    # (normalizers.Strip panics on text a zero-width Replace has touched, tokenizers 0.23.)
    collapse = [normalizers.Replace(Regex("^ +| +$"), ""), normalizers.Replace(Regex(" {2,}"), " ")]
    steps = [normalizers.Replace(Regex(_python_whitespace_class()), " ")]
    if split_cjk:
        cjk = CJK_CHARS
        steps.append(normalizers.Replace(Regex(f"(?<={cjk})|(?={cjk})"), " "))
    steps += collapse
    if proto.normalizer_spec.precompiled_charsmap:
        steps.append(normalizers.Precompiled(proto.normalizer_spec.precompiled_charsmap))
        steps += collapse
    steps += [normalizers.Prepend(WORD_START), normalizers.Replace(" ", WORD_START)]
    return normalizers.Sequence(steps)


def build_tokenizer(spm_path: str, dictionary: Dictionary, split_cjk: bool):
    """A `tokenizers.Tokenizer` encoding like our pipeline (see the module docstring)."""
    from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import Unigram

    proto = load_spm_proto(spm_path)
    check_spm(proto, spm_path)
    vocab = vocabulary(proto, dictionary, spm_path)
    tok = Tokenizer(Unigram(vocab, unk_id=dictionary.unk(), byte_fallback=False))
    tok.normalizer = build_normalizer(proto, split_cjk)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=WORD_START, prepend_scheme="never", split=True)
    tok.decoder = decoders.Metaspace(replacement=WORD_START, prepend_scheme="always", split=True)
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in (*SPECIALS, MASK)])
    bos, eos = dictionary.bos(), dictionary.eos()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", bos), ("</s>", eos)]
    )
    return tok


def save_pretrained(tok, out_dir: str, max_positions: int) -> None:
    """Write tokenizer.json + tokenizer_config.json that ``AutoTokenizer.from_pretrained`` loads as is."""
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        cls_token="<s>",
        sep_token="</s>",
        mask_token=MASK,
        model_max_length=max_positions,
        model_input_names=["input_ids", "attention_mask"],
    )
    fast.save_pretrained(out_dir)


class ReferenceEncoder:
    """Our pipeline's ids for raw text: the ground truth the exported tokenizer is checked against."""

    def __init__(self, spm_path: str, dictionary: Dictionary, data_dir: Optional[str] = None):
        """From files: the sentencepiece model, and the prepared directory whose pre-tokenization to
        follow (without one, e.g. an imported XLM-R: whitespace normalization only)."""
        data = PreparedData(data_dir or os.path.dirname(spm_path), spm_model=spm_path)
        plain = functools.partial(pretokenize, split_cjk=False)
        self._setup(data.sentencepiece(), dictionary, data.pretokenizer() if data_dir else plain)

    @classmethod
    def of(cls, sp, dictionary: Dictionary, pretokenize: Callable[[str], str]) -> "ReferenceEncoder":
        """From what a :class:`~fairseq_weam.core.data_dir.PreparedData` already loaded."""
        encoder = cls.__new__(cls)
        encoder._setup(sp, dictionary, pretokenize)
        return encoder

    def _setup(self, sp, dictionary: Dictionary, pretokenize: Callable[[str], str]) -> None:
        self.sp = sp
        self.dictionary = dictionary
        self.lut = spm_to_dict(sp, dictionary)
        self.pretokenize = pretokenize

    def pieces(self, text: str) -> List[int]:
        return self.lut[np.asarray(self.sp.encode(self.pretokenize(text), out_type=int), dtype=np.int64)].tolist()

    def __call__(self, text: str, pair: Optional[str] = None) -> List[int]:
        bos, eos = self.dictionary.bos(), self.dictionary.eos()
        ids = [bos, *self.pieces(text), eos]
        if pair is not None:
            ids += [eos, *self.pieces(pair), eos]
        return ids

    def log_probability(self, ids: Sequence[int]) -> float:
        """Sum of the unigram log-probabilities (sentencepiece scores) of the pieces of ``ids``."""
        scores = self._scores()
        return float(sum(scores[i] for i in ids))

    def _scores(self) -> np.ndarray:
        if not hasattr(self, "_score_table"):
            # <unk> costs what sentencepiece charges an unknown character: the lowest score - 10.
            table = np.zeros(len(self.dictionary))
            normal = [
                i for i in range(self.sp.get_piece_size()) if not (self.sp.is_unknown(i) or self.sp.is_control(i))
            ]
            floor = min(self.sp.get_score(i) for i in normal) if normal else 0.0
            for i in normal:
                table[self.lut[i]] = self.sp.get_score(i)
            table[self.dictionary.unk()] = floor - 10.0
            self._score_table = table
        return self._score_table

    def is_tie(self, ours: Sequence[int], theirs: Sequence[int], rel_tol: float = 1e-5) -> bool:
        """Two segmentations of the same text with the same probability up to float32 rounding.

        sentencepiece's Viterbi adds scores in float32, `tokenizers` in float64, so where two
        segmentations are (almost) exactly as likely, e.g. ``0000|0`` and ``0|0000``, each may
        keep a different one. Same pieces spelled out, same total score: a tie, not an error.
        """
        spell = lambda ids: "".join(self.dictionary[i] for i in ids)  # noqa: E731
        if spell(ours) != spell(theirs):
            return False
        a, b = self.log_probability(ours), self.log_probability(theirs)
        return abs(a - b) <= rel_tol * max(1.0, abs(a))
