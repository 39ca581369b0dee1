"""Tiny offline stand-ins for the QA evaluation: a unigram tokenizer trained here, a random
XLM-R-shaped encoder with a span head, and SQuAD / MLQA / XQuAD JSON files written here."""

import json
import os

from fairseq_weam.core.optional import load_transformers

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # XLM-R's ids 0..3, mask after them

# (context, question, answer): the answer occurs once in its context.
FACTS = [
    ("alice lives in paris and works at the bakery .", "where does alice live ?", "paris"),
    ("bob lives in berlin and works at the station .", "where does bob work ?", "the station"),
    ("carol has a red car and a blue bike .", "what colour is the car of carol ?", "red"),
    ("dave was born in nineteen ninety and studied music .", "what did dave study ?", "music"),
    ("erin reads old books in the quiet library .", "where does erin read ?", "the quiet library"),
    ("frank plays chess with his brother on sunday .", "when does frank play chess ?", "on sunday"),
]
ZH_FACTS = [("北京是中国的首都。", "中国的首都是哪里？", "北京")]


def make_tokenizer(out_dir: str, extra_text=(), vocab_size: int = 150, repeat: int = 5):
    """Train a unigram tokenizer (tokenizers library, Metaspace like sentencepiece) and save it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    PreTrainedTokenizerFast = load_transformers().PreTrainedTokenizerFast

    text = [c for c, _, _ in FACTS + ZH_FACTS] + [q for _, q, _ in FACTS + ZH_FACTS] + list(extra_text)
    tk = Tokenizer(models.Unigram())
    tk.pre_tokenizer = pre_tokenizers.Metaspace()
    tk.decoder = decoders.Metaspace()
    tk.train_from_iterator(
        text * repeat, trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, unk_token="<unk>")
    )
    tk.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
    )
    tok.save_pretrained(out_dir)
    return tok


def make_model_dir(out_dir: str, head: str = "qa", max_positions: int = 64, seed: int = 0):
    """A random 2-layer XLM-R (hidden 32) with the tokenizer, as transformers saves it.

    ``head``: ``qa`` (XLMRobertaForQuestionAnswering) or ``mlm`` (an exported pre-trained encoder).
    """
    import torch

    tf = load_transformers()

    tok = make_tokenizer(out_dir)
    config = tf.XLMRobertaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_positions + 2,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    torch.manual_seed(seed)
    cls = tf.XLMRobertaForQuestionAnswering if head == "qa" else tf.XLMRobertaForMaskedLM
    cls(config).save_pretrained(out_dir)
    return out_dir


def squad_doc(facts, id_prefix="q"):
    """SQuAD v1.1 JSON: one article, one paragraph per fact, answer_start found in the context."""
    paragraphs = []
    for k, (context, question, answer) in enumerate(facts):
        start = context.index(answer)
        paragraphs.append(
            {
                "context": context,
                "qas": [
                    {
                        "id": f"{id_prefix}{k}",
                        "question": question,
                        "answers": [{"text": answer, "answer_start": start}],
                    }
                ],
            }
        )
    return {"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]}


def write_json(path: str, obj) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False)
    return path
