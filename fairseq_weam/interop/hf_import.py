"""Import a transformers XLMRobertaForMaskedLM / RobertaForMaskedLM directory with a sentencepiece
tokenizer (XLM-R, InfoXLM, XLM-Align, and our own exports) as a fairseq RoBERTa checkpoint:

    OUT/model.pt   fairseq checkpoint (``args`` + ``model``, like the published XLM-R model.pt);
                   loads with ``--restore-file`` through our safe loader
    OUT/dict.txt   the vocabulary in the model's id order, without fairseq's 4 specials and the
                   final <mask> (the weam task adds it back)
    OUT/spm.model  the sentencepiece model
    OUT/import.json  provenance, the fairseq-train model flags, the parity measured

Only safetensors weights are read; pickles (``pytorch_model.bin``) are refused, never unpickled.
Nothing is written unless fairseq's features and MLM logits equal the transformers model's within
1e-4 on sample lines.
"""

import argparse
import json
import os
import shutil
from typing import Dict, List

import torch

from fairseq_weam import __version__
from fairseq_weam.core.data_dir import PreparedData
from fairseq_weam.core.optional import load_transformers
from fairseq_weam.core.outdir import atomic_output_dir, check_output_dir
from fairseq_weam.interop import InteropError, hf_tokenizer, parity, weights
from fairseq_weam.interop.hf_export import SAMPLE_TEXT

SPM_NAMES = ("spm.model", "sentencepiece.bpe.model", "sentencepiece.model", "tokenizer.model")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def load_safetensors(hf_dir: str) -> Dict[str, torch.Tensor]:
    """The weights of ``hf_dir`` from model.safetensors (or its shards); pickles are refused."""
    from safetensors.torch import load_file

    single = os.path.join(hf_dir, "model.safetensors")
    index = os.path.join(hf_dir, "model.safetensors.index.json")
    if os.path.isfile(single):
        files = [single]
    elif os.path.isfile(index):
        with open(index, encoding="utf-8") as f:
            files = [os.path.join(hf_dir, n) for n in sorted(set(json.load(f)["weight_map"].values()))]
    else:
        pickles = sorted(n for n in os.listdir(hf_dir) if n.endswith(PICKLE_SUFFIXES))
        if pickles:
            raise InteropError(
                f"{os.path.join(hf_dir, pickles[0])}: weights stored as a pickle, which can run arbitrary code when "
                "loaded; refusing it. Convert it to model.safetensors with a tool you trust, or fetch the safetensors "
                "version of the model"
            )
        raise InteropError(f"{hf_dir}: no model.safetensors (or model.safetensors.index.json)")
    state = {}
    for path in files:
        try:
            state.update(load_file(path))
        except Exception as e:  # safetensors' SafetensorError: truncated / not a safetensors file
            raise InteropError(f"{path}: unreadable safetensors file ({e})") from None
    return state


def find_spm(hf_dir: str) -> str:
    for name in SPM_NAMES:
        if os.path.isfile(os.path.join(hf_dir, name)):
            return os.path.join(hf_dir, name)
    raise InteropError(
        f"{hf_dir}: no sentencepiece model ({' / '.join(SPM_NAMES)}); only sentencepiece tokenizers are imported"
    )


def vocabulary_tokens(hf_dir: str, spm_path: str) -> List[str]:
    """Token string per transformers id: tokenizer.json's Unigram vocabulary, or else XLM-R's
    layout over the sentencepiece model (<s> <pad> </s> <unk>, pieces from id 3 on, <mask>)."""
    tj = os.path.join(hf_dir, "tokenizer.json")
    if os.path.isfile(tj):
        with open(tj, encoding="utf-8") as f:
            model = json.load(f).get("model", {})
        if model.get("type") != "Unigram":
            raise InteropError(
                f"{tj}: a {model.get('type')} tokenizer; only sentencepiece Unigram tokenizers are imported"
            )
        return [tok for tok, _ in model["vocab"]]
    proto = hf_tokenizer.load_spm_proto(spm_path)
    head = [p.piece for p in proto.pieces[:3]]
    if head != ["<unk>", "<s>", "</s>"]:
        raise InteropError(f"{spm_path}: pieces 0-2 are {head}, not XLM-R's <unk> <s> </s>; add its tokenizer.json")
    return [*hf_tokenizer.SPECIALS, *(p.piece for p in proto.pieces[3:]), hf_tokenizer.MASK]


def dictionary_symbols(tokens: List[str], spm_path: str) -> List[str]:
    """dict.txt symbols (ids 4 .. V-2) from the transformers vocabulary; checks the layout."""
    if tokens[:4] != list(hf_tokenizer.SPECIALS) or tokens[-1] != hf_tokenizer.MASK:
        raise InteropError(
            f"vocabulary starts {tokens[:4]} and ends {tokens[-1]!r}; fairseq needs {list(hf_tokenizer.SPECIALS)} "
            "first "
            f"and {hf_tokenizer.MASK} last"
        )
    symbols = [
        t[len(hf_tokenizer.UNREACHABLE) :] if t.startswith(hf_tokenizer.UNREACHABLE) else t for t in tokens[4:-1]
    ]
    if len(set(symbols)) != len(symbols):
        raise InteropError("the vocabulary has duplicate tokens; fairseq's dict.txt cannot hold them")
    proto = hf_tokenizer.load_spm_proto(spm_path)
    normal = proto.SentencePiece.Type.Value("NORMAL")
    known = set(symbols)
    missing = [p.piece for p in proto.pieces if p.type == normal and p.piece not in known]
    if missing:
        raise InteropError(
            f"{spm_path}: {len(missing)} piece(s) are not in the model's vocabulary (e.g. {missing[:3]})"
        )
    return symbols


def training_args(out_dir: str, model_flags: List[str]) -> argparse.Namespace:
    """The Namespace ``fairseq-train OUT --task weam --criterion weam MODEL_FLAGS`` parses to."""
    from fairseq import options

    user_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = options.get_training_parser()
    return options.parse_args_and_arch(
        parser, [out_dir, "--user-dir", user_dir, "--task", "weam", "--criterion", "weam", *model_flags]
    )


def checkpoint_state(args: argparse.Namespace, model_state: Dict[str, torch.Tensor]) -> dict:
    """A checkpoint in the layout of the published fairseq RoBERTa / XLM-R model.pt files."""
    return {
        "args": args,
        "model": model_state,
        "optimizer_history": [
            {
                "criterion_name": "WeamCriterion",
                "optimizer_name": "none",
                "lr_scheduler_state": {"best": None},
                "num_updates": 0,
            }
        ],
        "extra_state": {"train_iterator": {"epoch": 1, "iterations_in_epoch": 0}},
        "last_optimizer_state": None,
    }


def import_hf(hf_dir: str, out: str, overwrite: bool = False) -> dict:
    transformers = load_transformers()
    from fairseq import checkpoint_utils

    from fairseq_weam.core.checkpoints import build_model

    if not os.path.isfile(os.path.join(hf_dir, "config.json")):
        raise InteropError(f"{hf_dir}: no config.json; not a transformers model directory")
    check_output_dir(out, overwrite, [hf_dir])
    config = transformers.AutoConfig.from_pretrained(hf_dir, local_files_only=True)
    flags, max_positions = weights.fairseq_model_flags(config)
    tensors = load_safetensors(hf_dir)
    spm_path = find_spm(hf_dir)
    tokens = vocabulary_tokens(hf_dir, spm_path)
    symbols = dictionary_symbols(tokens, spm_path)
    if len(tokens) != config.vocab_size:
        raise InteropError(
            f"{hf_dir}: the tokenizer has {len(tokens)} tokens, config.json says vocab_size {config.vocab_size}"
        )
    tie = bool(getattr(config, "tie_word_embeddings", True))
    fs_state = weights.hf_to_fairseq(tensors, tie_word_embeddings=tie)
    rows = fs_state[weights.FS + "embed_tokens.weight"].shape[0]
    if rows != len(tokens):
        raise InteropError(f"{hf_dir}: {rows} embedding rows but {len(tokens)} tokens")

    with atomic_output_dir(out, overwrite, [hf_dir]) as tmp:
        with open(os.path.join(tmp, "dict.txt"), "w", encoding="utf-8") as f:
            f.writelines(f"{s} 1\n" for s in symbols)
        shutil.copyfile(spm_path, os.path.join(tmp, "spm.model"))
        args = training_args(os.path.abspath(out), flags)
        torch.save(checkpoint_state(args, fs_state), os.path.join(tmp, "model.pt"))

        # Load it back the way fairseq-train --restore-file and our evaluation do, and compare.
        state = checkpoint_utils.load_checkpoint_to_cpu(os.path.join(tmp, "model.pt"))
        written = PreparedData(tmp)  # dict.txt and spm.model, no summary: whitespace normalization only
        dictionary = written.dictionary(add_mask=True)
        fs_model, _ = build_model(state, dictionary, os.path.join(tmp, "model.pt"), written.dict_path)
        hf_model = transformers.AutoModelForMaskedLM.from_config(config).eval()
        missing, _ = hf_model.load_state_dict(weights.with_model_prefix(tensors), strict=False)
        missing = [k for k in missing if not k.startswith("lm_head.decoder.")]  # tied, filled by tie_weights
        if missing:
            raise InteropError(f"{hf_dir}: weights missing from the safetensors file(s): {missing[:3]}")
        hf_model.tie_weights()
        reference = hf_tokenizer.ReferenceEncoder.of(written.sentencepiece(), dictionary, written.pretokenizer())
        ids = [reference(t)[:max_positions] for t in SAMPLE_TEXT]
        diffs = parity.max_differences(fs_model, hf_model, ids, dictionary.pad())
        if not parity.within_tolerance(diffs):
            raise InteropError(
                f"{hf_dir}: fairseq outputs differ from transformers': {parity.format_differences(diffs)}"
            )
        record = {
            "source": os.path.abspath(hf_dir),
            "model_type": config.model_type,
            "fairseq_train_model_flags": flags,
            "max_positions": max_positions,
            "vocab_size": len(tokens),
            "differences": diffs,
            "plugin_version": __version__,
        }
        with open(os.path.join(tmp, "import.json"), "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2, ensure_ascii=False)
    return {"out": os.path.abspath(out), **record}
