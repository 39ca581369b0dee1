"""Accuracy of a fine-tuned NLI checkpoint on every XNLI split, XTREME-style predictions, and the
paper's table."""

import json
import os
from collections import OrderedDict
from typing import Dict, Optional, Sequence

import torch
from tqdm import tqdm

from fairseq_weam.core.atomic import write_text_atomic
from fairseq_weam.core.checkpoints import check_vocabulary, load_checkpoint
from fairseq_weam.core.data_dir import load_dictionary
from fairseq_weam.core.errors import OptionError
from fairseq_weam.evaluation.xnli.finetune import HEAD
from fairseq_weam.evaluation.xnli.tsv import XNLI_LANGS


@torch.no_grad()
def evaluate(
    checkpoint: str,
    data_dir: str,
    splits: Optional[Sequence[str]] = None,
    batch_size: int = 64,
    device=None,
    dtype=torch.float32,
    predictions_dir: Optional[str] = None,
) -> Dict[str, dict]:
    """Accuracy of a fine-tuned checkpoint on each split (default: every xnli_* split), on
    ``device`` in ``dtype``. Unlabelled splits get accuracy None. With ``predictions_dir``, every
    split's predicted labels are written there in XTREME's submission format (``test-XX.tsv`` /
    ``dev-XX.tsv``: one label per line, in the order of the input file)."""
    from fairseq import checkpoint_utils, utils

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    with open(os.path.join(data_dir, "splits.json")) as f:
        table = json.load(f)
    splits = list(splits) if splits else [s for s in table if s.startswith("xnli_")]
    unknown = [s for s in splits if s not in table]
    if unknown:
        raise OptionError(f"--splits: {data_dir}/splits.json has no split {', '.join(unknown)}")
    state = load_checkpoint(checkpoint, {"data": data_dir})
    # sentence_prediction appends <mask> to input0/dict.txt, as the model's embedding table has it.
    dict_path = os.path.join(data_dir, "input0", "dict.txt")
    check_vocabulary(state, len(load_dictionary(os.path.dirname(dict_path))) + 1, checkpoint, dict_path)
    models, _, task = checkpoint_utils.load_model_ensemble_and_task(
        [checkpoint], arg_overrides={"data": data_dir}, state=state
    )
    model = models[0].eval().to(device=device, dtype=dtype)
    labels = task.label_dictionary
    results = OrderedDict()
    for split in splits:
        task.load_dataset(split)
        itr = task.get_batch_iterator(
            dataset=task.dataset(split),
            max_sentences=batch_size,
            max_positions=task.max_positions(),
            ignore_invalid_inputs=False,
        ).next_epoch_itr(shuffle=False)
        predicted = [None] * len(task.dataset(split))
        correct = total = 0
        for sample in tqdm(itr, desc=f"evaluating {split}", unit="batch", disable=None, leave=False):
            sample = utils.move_to_cuda(sample, device) if device.type == "cuda" else sample
            logits, _ = model(**sample["net_input"], features_only=True, classification_head_name=HEAD)
            guess = logits.argmax(-1)
            correct += guess.eq(sample["target"].view(-1)).sum().item()
            total += sample["target"].numel()
            # The iterator orders by length; sample ids put the predictions back in file order.
            for i, g in zip(sample["id"].tolist(), guess.tolist()):
                predicted[i] = labels[g + labels.nspecial]
        labelled = table[split].get("labelled", True)
        results[split] = {
            "lang": table[split]["lang"],
            "n": total,
            "accuracy": (correct / total if total else 0.0) if labelled else None,
        }
        if predictions_dir:
            kind = split.split("_")[1]  # xnli_test_de -> test
            write_text_atomic(
                os.path.join(predictions_dir, f"{kind}-{table[split]['lang']}.tsv"),
                "".join(p + "\n" for p in predicted),
            )
    return results


def format_table(results: Dict[str, dict]) -> str:
    """The paper table: one row per XNLI split kind (dev / test), per-language accuracy + avg."""
    rows = OrderedDict()
    for split, r in results.items():
        kind = split.rsplit("_", 1)[0] if split.startswith("xnli_") else split
        rows.setdefault(kind, OrderedDict())[r["lang"]] = r["accuracy"]
    langs = [l for l in XNLI_LANGS if any(l in r for r in rows.values())]
    langs += sorted({l for r in rows.values() for l in r} - set(langs))
    lines = ["| split | " + " | ".join(langs) + " | avg |", "|---" * (len(langs) + 2) + "|"]
    for kind, accs in rows.items():
        cells = [f"{100 * accs[l]:.1f}" if accs.get(l) is not None else "-" for l in langs]
        scored = [a for a in accs.values() if a is not None]  # unlabelled (XTREME test) splits: "-"
        avg = f"{100 * sum(scored) / len(scored):.1f}" if scored else "-"
        lines.append(f"| {kind} | " + " | ".join(cells) + f" | {avg} |")
    return "\n".join(lines) + "\n"
