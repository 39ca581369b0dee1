"""Export a fairseq RoBERTa / WEAM checkpoint + its prepared data dir as a transformers directory:
``config.json`` (XLMRobertaForMaskedLM), ``model.safetensors``, ``tokenizer.json`` +
``tokenizer_config.json`` (see :mod:`.hf_tokenizer`) and the sentencepiece model (``spm.model``,
so that ``fairseq-weam-import-hf`` can go back).

Nothing is written unless both checks pass: the tokenizer's ids equal the data pipeline's on
built-in lines in several scripts plus every line of the ``check_text`` files, and the model
reloaded with ``AutoModelForMaskedLM.from_pretrained`` gives hidden states (every layer) and MLM
logits equal to fairseq's within 1e-4.
"""

import datetime
import os
import shutil
from typing import Optional, Sequence, Tuple

from tqdm import tqdm

from fairseq_weam import __version__
from fairseq_weam.core.checkpoints import build_model, load_checkpoint
from fairseq_weam.core.data_dir import SPM_MODEL, PreparedData
from fairseq_weam.core.file_digest import sha256
from fairseq_weam.core.optional import load_transformers
from fairseq_weam.core.outdir import atomic_output_dir, check_output_dir
from fairseq_weam.interop import InteropError, hf_tokenizer, parity, weights

# Lines in the scripts of the demo corpus (and a few traps) encoded by both sides on every export.
SAMPLE_TEXT = [
    "Open the selected file",
    "Impossible de lire le fichier « %s » : accès refusé.",
    "Die Datei konnte nicht geöffnet werden.",
    "Не удалось открыть файл",
    "无法打开文件：权限不足",
    "ファイルを開けませんでした。",
    "Δεν ήταν δυνατό το άνοιγμα του αρχείου",
    "تعذر فتح الملف",
    "फ़ाइल खोली नहीं जा सकी",
    "Tiedostoa ei voitu avata",
    "  spaces\tand\ttabs   around  ",
    "ＦＵＬＬＷＩＤＴＨ １２３ and ligature ﬁle",
    "",
]


def read_check_lines(paths: Sequence[str]):
    """(path, line number, text) of every line of the given raw text files."""
    for path in paths:
        with open(path, encoding="utf-8", errors="strict", newline="\n") as f:
            for lineno, line in enumerate(f, 1):
                yield path, lineno, line.rstrip("\n")


def check_tokenizer(reference, hf_tok, check_text: Sequence[str]) -> Tuple[int, int]:
    """Raise on the first line the two tokenizers encode differently; returns (lines checked,
    lines where both chose different but equally probable segmentations: see ``is_tie``)."""
    items = [("built-in sample", k + 1, t) for k, t in enumerate(SAMPLE_TEXT)] + list(read_check_lines(check_text))
    ties = 0
    for start in tqdm(
        range(0, len(items), 512), desc="checking the tokenizer", unit="chunk", disable=len(items) < 5000
    ):
        chunk = items[start : start + 512]
        theirs = hf_tok([t for _, _, t in chunk])["input_ids"]
        for (path, lineno, text), ids in zip(chunk, theirs):
            ours, ids = reference(text), list(ids)
            if ids == ours:
                continue
            if reference.is_tie(ours, ids):
                ties += 1
                continue
            raise InteropError(
                f"{path}:{lineno}: the transformers tokenizer encodes this line differently from the data "
                f"pipeline (ours {ours[:12]}..., transformers {ids[:12]}...); nothing exported"
            )
    return len(items), ties


def export(
    checkpoint: str,
    data_dir: str,
    out: str,
    overwrite: bool = False,
    check_text: Sequence[str] = (),
    spm_model: Optional[str] = None,
) -> dict:
    """Write the transformers directory ``out``; returns a summary of what was checked."""
    transformers = load_transformers()
    PreTrainedTokenizerFast, XLMRobertaConfig = transformers.PreTrainedTokenizerFast, transformers.XLMRobertaConfig
    XLMRobertaForMaskedLM = transformers.XLMRobertaForMaskedLM

    data = PreparedData(data_dir, spm_model)
    for path in (checkpoint, data.spm_model, data.dict_path, *check_text):
        if not os.path.isfile(path):
            raise InteropError(f"file not found: {path}")
    check_output_dir(out, overwrite, [checkpoint, data_dir])

    state = load_checkpoint(checkpoint)  # the allow-listed safe loader, never a blind unpickle
    # What the export needs of the data directory, all from it here: the dictionary (+ <mask>, as
    # the model's embedding table has it), the pre-tokenization, the sentencepiece model.
    dictionary = data.dictionary(add_mask=True)
    split_cjk = data.split_cjk
    reference = hf_tokenizer.ReferenceEncoder.of(data.sentencepiece(), dictionary, data.pretokenizer())
    fs_model, args = build_model(state, dictionary, checkpoint, data.dict_path)
    tok = hf_tokenizer.build_tokenizer(data.spm_model, dictionary, split_cjk)

    fs_state = fs_model.state_dict()
    positions = fs_state[weights.FS + "embed_positions.weight"].shape[0]
    provenance = {
        "source_checkpoint": os.path.abspath(checkpoint),
        "checkpoint_sha256": sha256(checkpoint),
        "data_dir": os.path.abspath(data_dir),
        "spm_model": os.path.abspath(data.spm_model),
        "split_cjk": split_cjk,
        "plugin_version": __version__,
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    config = XLMRobertaConfig(
        **weights.hf_config_kwargs(
            args, len(dictionary), positions, dictionary.pad(), dictionary.bos(), dictionary.eos()
        ),
        fairseq_weam=provenance,
    )
    hf_model = XLMRobertaForMaskedLM(config).eval()
    missing, unexpected = hf_model.load_state_dict(weights.fairseq_to_hf(fs_state), strict=False)
    if missing or unexpected:
        raise InteropError(
            f"{checkpoint}: weights do not fill XLMRobertaForMaskedLM (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]})"
        )

    max_positions = int(args.max_positions)
    with atomic_output_dir(out, overwrite, [checkpoint, data_dir]) as tmp:
        hf_tokenizer.save_pretrained(tok, tmp, max_positions)
        # Check the tokenizer as saved and reloaded, the way users will get it.
        saved_tok = PreTrainedTokenizerFast.from_pretrained(tmp)
        lines_checked, ties = check_tokenizer(reference, saved_tok, check_text)
        hf_model.save_pretrained(tmp)
        # Compare fairseq with the model as users will load it from the directory.
        saved_model = transformers.AutoModelForMaskedLM.from_pretrained(tmp).eval()
        ids = [reference(t)[:max_positions] for t in SAMPLE_TEXT]
        diffs = parity.max_differences(fs_model, saved_model, ids, dictionary.pad())
        if not parity.within_tolerance(diffs):
            raise InteropError(
                f"{checkpoint}: transformers outputs differ from fairseq's: {parity.format_differences(diffs)}"
            )
        shutil.copyfile(data.spm_model, os.path.join(tmp, SPM_MODEL))
        for name in os.listdir(tmp):  # some writers create 0600 files; an export is for sharing
            os.chmod(os.path.join(tmp, name), 0o644)
    return {
        "out": os.path.abspath(out),
        "tokenizer_lines_checked": lines_checked,
        "tokenizer_ties": ties,
        "differences": diffs,
        "vocab_size": len(dictionary),
        "max_positions": max_positions,
        "split_cjk": split_cjk,
    }
