"""A tiny synthetic bitext with known word alignments, for tests.

Two made-up languages share nothing but a word-for-word lexicon; the target side swaps one
adjacent word pair per sentence, so the alignment is not the diagonal. A real sentencepiece
model is trained on both sides, and the word links are projected to subword positions.
"""

import os
import subprocess
import sys

import numpy as np
import sentencepiece as spm

from fairseq_weam.data.alignment import format_pharaoh, pieces_per_word, project_alignments

LETTERS = "abcdefghijklmnoprstuvz"


def _lexicon(rng, n_words):
    def word(k):
        return "".join(rng.choice(list(LETTERS), size=rng.integers(2, 7)))

    src = sorted({word(k) for k in range(n_words * 2)})[:n_words]
    tgt = sorted({word(k).upper() for k in range(n_words * 2)})[:n_words]
    return src, [w.lower() + "q" for w in tgt]


def make_pairs(n_pairs, seed=0, n_words=60, min_len=3, max_len=9):
    """Return (src_lines, tgt_lines, word_links) with links as lists of (i, j)."""
    rng = np.random.default_rng(seed)
    src_lex, tgt_lex = _lexicon(rng, n_words)
    # Zipf-like word frequencies, as in real text.
    p = 1.0 / np.arange(1, n_words + 1)
    p /= p.sum()
    src_lines, tgt_lines, links = [], [], []
    for _ in range(n_pairs):
        n = int(rng.integers(min_len, max_len + 1))
        ids = rng.choice(n_words, size=n, p=p)
        order = np.arange(n)
        k = int(rng.integers(0, n - 1))
        order[[k, k + 1]] = order[[k + 1, k]]
        src_lines.append(" ".join(src_lex[i] for i in ids))
        tgt_lines.append(" ".join(tgt_lex[ids[o]] for o in order))
        # target word j translates source word order[j]
        links.append([(int(order[j]), j) for j in range(n)])
    return src_lines, tgt_lines, links


def train_spm(lines, prefix, vocab_size=120):
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_prefix=prefix,
        vocab_size=vocab_size,
        character_coverage=1.0,
        model_type="unigram",
        bos_id=-1,
        eos_id=-1,
        unk_id=0,
        minloglevel=2,
        num_threads=1,
    )
    return spm.SentencePieceProcessor(model_file=prefix + ".model")


def write_split(sp, out_dir, split, src, tgt, src_lines, tgt_lines, word_links):
    with (
        open(os.path.join(out_dir, f"{split}.{src}"), "w") as fs,
        open(os.path.join(out_dir, f"{split}.{tgt}"), "w") as ft,
        open(os.path.join(out_dir, f"{split}.align"), "w") as fa,
    ):
        for s, t, links in zip(src_lines, tgt_lines, word_links):
            ps, pt = sp.encode(s, out_type=str), sp.encode(t, out_type=str)
            sub = project_alignments(np.array(links), pieces_per_word(ps), pieces_per_word(pt))
            fs.write(" ".join(ps) + "\n")
            ft.write(" ".join(pt) + "\n")
            fa.write(format_pharaoh(sub) + "\n")


def build_raw(out_dir, n_train=400, n_valid=40, src="xx", tgt="yy", seed=0, vocab_size=120):
    """Write spm-encoded train/valid text and subword alignments; return the spm processor."""
    os.makedirs(out_dir, exist_ok=True)
    s, t, links = make_pairs(n_train + n_valid, seed=seed)
    sp = train_spm(s + t, os.path.join(out_dir, "spm"), vocab_size=vocab_size)
    write_split(sp, out_dir, "train", src, tgt, s[:n_train], t[:n_train], links[:n_train])
    write_split(sp, out_dir, "valid", src, tgt, s[n_train:], t[n_train:], links[n_train:])
    return sp


def preprocess(raw_dir, data_dir, src="xx", tgt="yy", extra=()):
    """Binarize with the real fairseq-preprocess (joined dictionary, --align-suffix)."""
    cmd = [
        os.path.join(os.path.dirname(sys.executable), "fairseq-preprocess"),
        "--source-lang",
        src,
        "--target-lang",
        tgt,
        "--trainpref",
        os.path.join(raw_dir, "train"),
        "--validpref",
        os.path.join(raw_dir, "valid"),
        "--align-suffix",
        "align",
        "--joined-dictionary",
        "--destdir",
        data_dir,
        "--workers",
        "1",
        *extra,
    ]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    os.replace(os.path.join(data_dir, f"dict.{src}.txt"), os.path.join(data_dir, "dict.txt"))
    os.remove(os.path.join(data_dir, f"dict.{tgt}.txt"))


def _run_preprocess(args):
    cmd = [os.path.join(os.path.dirname(sys.executable), "fairseq-preprocess"), "--workers", "1", *args]
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def build_multi(root, pairs=(("xx", "yy", 400), ("xx", "zz", 60)), mono=(("yy", 200),), n_valid=30, vocab_size=160):
    """Several language pairs (and monolingual text) sharing one sentencepiece model and one
    fairseq dictionary, binarized into ``root/bin``; sizes are deliberately unequal."""
    raw = os.path.join(str(root), "raw")
    data = os.path.join(str(root), "bin")
    os.makedirs(raw, exist_ok=True)
    corpora = {}
    for k, (src, tgt, n) in enumerate(pairs):
        corpora[(src, tgt)] = make_pairs(n + n_valid, seed=100 + k)
    all_lines = [line for s, t, _ in corpora.values() for line in s + t]
    sp = train_spm(all_lines, os.path.join(raw, "spm"), vocab_size=vocab_size)
    with open(os.path.join(raw, "all.txt"), "w") as f:
        f.writelines(" ".join(sp.encode(line, out_type=str)) + "\n" for line in all_lines)
    _run_preprocess(
        ["--only-source", "--trainpref", os.path.join(raw, "all.txt"), "--destdir", os.path.join(raw, "dict")]
    )
    dict_path = os.path.join(raw, "dict", "dict.None.txt")
    if not os.path.exists(dict_path):
        dict_path = os.path.join(raw, "dict", "dict.txt")
    for src, tgt, n in pairs:
        s, t, links = corpora[(src, tgt)]
        pdir = os.path.join(raw, f"{src}-{tgt}")
        os.makedirs(pdir, exist_ok=True)
        write_split(sp, pdir, "train", src, tgt, s[:n], t[:n], links[:n])
        write_split(sp, pdir, "valid", src, tgt, s[n:], t[n:], links[n:])
        _run_preprocess(
            [
                "--source-lang",
                src,
                "--target-lang",
                tgt,
                "--trainpref",
                os.path.join(pdir, "train"),
                "--validpref",
                os.path.join(pdir, "valid"),
                "--align-suffix",
                "align",
                "--srcdict",
                dict_path,
                "--tgtdict",
                dict_path,
                "--destdir",
                data,
            ]
        )
    for lang, n in mono:
        # Monolingual text: the target side of the first pair that has this language.
        src, tgt, _ = next(p for p in pairs if lang in p[:2])
        s, t, _ = corpora[(src, tgt)]
        lines = s if lang == src else t
        mdir = os.path.join(raw, f"mono.{lang}")
        os.makedirs(mdir, exist_ok=True)
        for split, chunk in (("train", lines[:n]), ("valid", lines[-n_valid:])):
            with open(os.path.join(mdir, f"{split}.{lang}"), "w") as f:
                f.writelines(" ".join(sp.encode(line, out_type=str)) + "\n" for line in chunk)
        _run_preprocess(
            [
                "--only-source",
                "--source-lang",
                lang,
                "--trainpref",
                os.path.join(mdir, "train"),
                "--validpref",
                os.path.join(mdir, "valid"),
                "--srcdict",
                dict_path,
                "--destdir",
                data,
            ]
        )
    import shutil

    shutil.copy(dict_path, os.path.join(data, "dict.txt"))
    return sp, data
