"""What the ``weam`` task checks in ``setup_task``, before any model is built or any update is run:
its flags' ranges, the language pairs and monolingual streams against the data directory, an
explicit ``--restore-file`` that does not exist, and a ``--tokens-per-sample`` shorter than the
length the data was prepared for. Every failure is a WeamError naming the flag, shown by
``fairseq-train`` as one ``fairseq-train: error:`` line (:func:`fairseq_weam.core.checks.one_line_errors`).
"""

import json
import os
from typing import List, Sequence, Tuple

from fairseq_weam.core.checks import FlagError, check_number
from fairseq_weam.core.indexed_files import read_sizes
from fairseq_weam.data.language_sampling import parse_caps

# fairseq's default --restore-file: resume from SAVE_DIR/checkpoint_last.pt if there is one.
DEFAULT_RESTORE_FILE = "checkpoint_last.pt"
# The shortest laid-out pair <s> x </s></s> y </s> with one token a side.
MIN_TOKENS_PER_SAMPLE = 6


def _resolved(cfg, name):
    """A linked field (``II("checkpoint.restore_file")``) or None where it cannot be resolved (a
    config built by hand, an old checkpoint's config)."""
    try:
        value = getattr(cfg, name, None)
    except Exception:  # omegaconf: interpolation to a missing key
        return None
    return None if isinstance(value, str) and value.startswith("${") else value


def check_flags(cfg) -> None:
    """The task's own flags, by range."""
    for flag, value in (
        ("--mask-prob", cfg.mask_prob),
        ("--leave-unmasked-prob", cfg.leave_unmasked_prob),
        ("--random-token-prob", cfg.random_token_prob),
    ):
        check_number(flag, value, minimum=0, maximum=1)
    if cfg.leave_unmasked_prob + cfg.random_token_prob > 1:
        raise FlagError(
            f"--leave-unmasked-prob {cfg.leave_unmasked_prob} + --random-token-prob {cfg.random_token_prob} "
            "must be at most 1 (shares of the masked tokens)"
        )
    check_number("--sampling-alpha", cfg.sampling_alpha, minimum=0)
    check_number("--tokens-per-sample", cfg.tokens_per_sample, minimum=MIN_TOKENS_PER_SAMPLE, integer=True)
    try:
        return parse_caps(cfg.lang_caps)
    except ValueError as e:
        raise FlagError(str(e)) from None


def check_streams(paths: Sequence[str], split: str, lang_pairs: List[Tuple[str, str]], mono_langs) -> None:
    """Every language pair and monolingual language has its ``split`` files in every data dir."""
    for path in paths:
        missing = [
            f"{s}-{t}" for s, t in lang_pairs if not os.path.exists(os.path.join(path, f"{split}.{s}-{t}.{s}.idx"))
        ]
        if missing:
            found = sorted(
                n[len(split) + 1 :].rsplit(".", 2)[0]
                for n in os.listdir(path)
                if n.startswith(split + ".") and n.endswith(".idx") and ".align." not in n and "-None." not in n
            )
            raise FlagError(
                f"--lang-pairs names {','.join(missing)}, but {path} has no {split}.{missing[0]}.*.idx; "
                f"pairs in the data: {','.join(sorted(set(found))) or 'none'}"
            )
        for lang in mono_langs:
            if not os.path.exists(os.path.join(path, f"{split}.{lang}-None.{lang}.idx")):
                raise FlagError(f"--mono-langs names {lang}, but {path} has no {split}.{lang}-None.{lang}.idx")


def check_restore_file(cfg) -> None:
    """fairseq trains from scratch, with one INFO line, when an explicit --restore-file does not
    exist (checkpoint_utils.load_checkpoint -> Trainer.load_checkpoint). Only the default
    (SAVE_DIR/checkpoint_last.pt, absent on a first run) may be missing; any other value is used
    as given (relative to the working directory), as fairseq resolves it."""
    restore = _resolved(cfg, "restore_file")
    if not restore or restore == DEFAULT_RESTORE_FILE:
        return
    if not os.path.isfile(restore):
        raise FlagError(
            f"--restore-file {restore}: no such file (fairseq would train from scratch); "
            "fix the path, or leave --restore-file out to start fresh or resume from --save-dir"
        )


def prepared_length(path: str):
    """``--max-positions`` the data dir was prepared with (its summary.json), or None."""
    summary = os.path.join(path, "summary.json")
    try:
        with open(summary, encoding="utf-8") as f:
            value = json.load(f).get("options", {}).get("max_positions")
    except (OSError, ValueError):
        return None
    return int(value) if isinstance(value, (int, float)) else None


def longer_pairs(path: str, split: str, lang_pairs, tokens_per_sample: int) -> int:
    """Pairs of ``split`` whose laid-out length ``<s> x </s></s> y </s>`` exceeds ``tokens_per_sample``
    (read from the .idx headers only)."""
    n = 0
    for s, t in lang_pairs:
        stem = os.path.join(path, f"{split}.{s}-{t}.")
        if not all(os.path.isfile(stem + x + ".idx") for x in (s, t)):
            continue  # the loader reports it
        src, tgt = read_sizes(stem + s), read_sizes(stem + t)
        if src is not None and tgt is not None and len(src) == len(tgt):
            n += int((src + tgt + 2 > tokens_per_sample).sum())
    return n


def check_tokens_per_sample(cfg, paths, lang_pairs) -> None:
    """Refuse a --tokens-per-sample shorter than pairs of the data (fairseq would skip them
    silently in training) unless --skip-invalid-size-inputs-valid-test says skipping is wanted."""
    if cfg.bitext_objective == "mlm" or _resolved(cfg, "skip_invalid_size_inputs_valid_test"):
        return
    for path in paths:
        prepared = prepared_length(path)
        if prepared is None or prepared <= cfg.tokens_per_sample:
            continue
        n = longer_pairs(path, _resolved(cfg, "train_subset") or "train", lang_pairs, cfg.tokens_per_sample)
        if n:
            raise FlagError(
                f"--tokens-per-sample {cfg.tokens_per_sample} is shorter than {path} was prepared for "
                f"(--max-positions {prepared}, summary.json): {n} training pairs are longer and would be skipped; "
                f"re-prepare with --max-positions {cfg.tokens_per_sample}, or pass "
                "--skip-invalid-size-inputs-valid-test to skip them"
            )


def check_task(cfg, paths, lang_pairs, mono_langs, from_checkpoint: bool = False) -> None:
    """All of the above; a task rebuilt from a checkpoint's config (evaluation) checks its flags only."""
    caps = check_flags(cfg)
    streams = [f"{s}-{t}" for s, t in lang_pairs] + list(mono_langs)
    unknown = sorted(set(caps) - set(streams))
    if unknown:
        raise FlagError(f"--lang-caps names unknown streams {','.join(unknown)}; streams are {','.join(streams)}")
    if from_checkpoint:
        return
    check_streams(paths, _resolved(cfg, "train_subset") or "train", lang_pairs, mono_langs)
    check_restore_file(cfg)
    check_tokens_per_sample(cfg, paths, lang_pairs)
