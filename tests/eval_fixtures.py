"""Tiny multilingual fixtures for the evaluation tests: shared spm + dictionary, several en-XX
pairs of different sizes (a miniature of the imbalanced corpus), raw held-out sets, and a tiny
pre-trained WEAM checkpoint trained with the real ``fairseq-train``.
"""

import os
import subprocess
import sys

from e2e import TEST_MODEL_ARGS, never, run_train, train_command  # noqa: F401  (TEST_MODEL_ARGS re-exported)
from synthetic_corpus import make_pairs, train_spm, write_split

import fairseq_weam

BIN = os.path.dirname(sys.executable)
USER_DIR = os.path.dirname(fairseq_weam.__file__)

TINY_TRAIN = [
    "--optimizer",
    "adam",
    "--lr",
    "1e-3",
    "--lr-scheduler",
    "inverse_sqrt",
    "--warmup-updates",
    "5",
    "--batch-size",
    "16",
    "--cpu",
    "--num-workers",
    "0",
    "--no-epoch-checkpoints",
    "--log-format",
    "simple",
]


def _sizes(sizes):
    return sizes if sizes is not None else {"aa": 240, "bb": 80}


def build_multilingual(root, sizes=None, n_heldout=20, seed=0):
    """Write ``root/data`` (binarized weam data with spm.model and dict.txt) and ``root/heldout``
    (raw ``en-XX.en`` / ``en-XX.XX``). Each language XX has its own synthetic lexicon; the
    English side of each pair is the synthetic source language of that seed."""
    sizes = _sizes(sizes)
    raw, data, heldout = (os.path.join(root, d) for d in ("raw", "data", "heldout"))
    for d in (raw, data, heldout):
        os.makedirs(d, exist_ok=True)
    corpora = {}
    for k, (lang, n) in enumerate(sorted(sizes.items())):
        corpora[lang] = make_pairs(n + 10 + n_heldout, seed=seed + 17 * k, n_words=40)
    all_lines = [l for s, t, _ in corpora.values() for l in s + t]
    sp = train_spm(all_lines, os.path.join(data, "spm"), vocab_size=150)
    with open(os.path.join(data, "dict.txt"), "w") as f:
        for i in range(sp.get_piece_size()):
            piece = sp.id_to_piece(i)
            if piece != "<unk>":
                f.write(f"{piece} 1\n")
    for lang, (s, t, links) in corpora.items():
        n = sizes[lang]
        write_split(sp, raw, "train", "en", lang, s[:n], t[:n], links[:n])
        for suffix in ("en", lang, "align"):
            os.replace(os.path.join(raw, f"train.{suffix}"), os.path.join(raw, f"train.en-{lang}.{suffix}"))
        write_split(sp, raw, "valid", "en", lang, s[n : n + 10], t[n : n + 10], links[n : n + 10])
        for suffix in ("en", lang, "align"):
            os.replace(os.path.join(raw, f"valid.{suffix}"), os.path.join(raw, f"valid.en-{lang}.{suffix}"))
        subprocess.run(
            [
                os.path.join(BIN, "fairseq-preprocess"),
                "--source-lang",
                "en",
                "--target-lang",
                lang,
                "--trainpref",
                os.path.join(raw, f"train.en-{lang}"),
                "--validpref",
                os.path.join(raw, f"valid.en-{lang}"),
                "--align-suffix",
                "align",
                "--srcdict",
                os.path.join(data, "dict.txt"),
                "--joined-dictionary",
                "--destdir",
                data,
                "--workers",
                "1",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        for extra in ("dict.en.txt", f"dict.{lang}.txt"):
            if os.path.exists(os.path.join(data, extra)):
                os.remove(os.path.join(data, extra))
        with (
            open(os.path.join(heldout, f"en-{lang}.en"), "w") as fe,
            open(os.path.join(heldout, f"en-{lang}.{lang}"), "w") as fx,
        ):
            fe.write("\n".join(s[-n_heldout:]) + "\n")
            fx.write("\n".join(t[-n_heldout:]) + "\n")
    return data, heldout, corpora


def train_tiny(data, save_dir, max_update=12, extra=()):
    """Pre-train a tiny WEAM model; return the path of checkpoint_last.pt."""
    cmd = train_command(
        data,
        *TEST_MODEL_ARGS,
        *TINY_TRAIN,
        "--max-update",
        str(max_update),
        "--save-dir",
        save_dir,
        *extra,
        user_dir=USER_DIR,
    )
    return run_train(cmd, show=never).checkpoint("checkpoint_last.pt")


_SHARED = {}


def shared_pretrained():
    """One multilingual fixture + tiny checkpoint per test process, shared by the test modules
    (a conftest session fixture would do the same, but conftest.py belongs to everyone)."""
    if "root" not in _SHARED:
        import atexit
        import shutil
        import tempfile

        root = tempfile.mkdtemp(prefix="weam-eval-")
        atexit.register(shutil.rmtree, root, True)
        data, heldout, corpora = build_multilingual(os.path.join(root, "pre"), sizes={"aa": 160, "bb": 60})
        ckpt = train_tiny(data, os.path.join(root, "ckpt"), max_update=8)
        _SHARED.update(root=root, data=data, heldout=heldout, corpora=corpora, ckpt=ckpt)
    return _SHARED["data"], _SHARED["heldout"], _SHARED["corpora"], _SHARED["ckpt"]
