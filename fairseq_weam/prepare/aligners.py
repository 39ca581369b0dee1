"""Word aligners: fast_align through its Python binding (default), eflomal, or imported links.

Every backend takes whitespace words per sentence and returns ``Links``: the word links of all
sentences as one ``(L, 2)`` array plus a per-sentence count (source word, target word; 0-based).
``--aligner NAME`` picks one object of :data:`REGISTRY` (:func:`get`), which knows how to fit its
parameters into the fitted directory (``fit``), how to load them to align chunks (``load``), and
whether the links come with the corpus instead (``imported``).
"""

import os
import tempfile
from dataclasses import dataclass
from itertools import chain
from typing import List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from fairseq_weam.data.alignment import AlignmentError, check_links_in_range, parse_pharaoh
from fairseq_weam.prepare.errors import BadLines, PrepareError

_CHUNK = 20000


@dataclass
class Links:
    flat: np.ndarray  # (L, 2) int64
    counts: np.ndarray  # (n_sentences,) links per sentence

    @property
    def sentence(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.counts)), self.counts)

    def select(self, keep: np.ndarray) -> "Links":
        keep = np.asarray(keep, dtype=bool)
        return Links(self.flat[np.repeat(keep, self.counts)], self.counts[keep])

    @classmethod
    def from_lists(cls, links: Sequence[Sequence[Sequence[int]]]) -> "Links":
        counts = np.fromiter(map(len, links), dtype=np.int64, count=len(links))
        flat = np.fromiter(chain.from_iterable(chain.from_iterable(links)), dtype=np.int64, count=2 * int(counts.sum()))
        return cls(flat.reshape(-1, 2), counts)


def _safe(words: Sequence[str]) -> str:
    # "|||" separates the two sides in fast_align's input; a word spelled that way is renamed
    # for the aligner only.
    return " ".join("<|||>" if w == "|||" else w for w in words)


def write_fast_align_input(f, src_words: Sequence[Sequence[str]], tgt_words: Sequence[Sequence[str]]) -> None:
    """Append pairs to fast_align's training file (``source ||| target`` lines)."""
    for s, t in zip(src_words, tgt_words):
        f.write(f"{_safe(s)} ||| {_safe(t)}\n")


def fit_fast_align(corpus: str, fwd: str, bwd: str, *, iterations: int = 5, favor_diagonal: bool = True) -> None:
    """Train both directions on the ``source ||| target`` file ``corpus``; the fitted parameters
    (translation tables, diagonal tension, null probability) go to the binding's files ``fwd``
    and ``bwd``, which :class:`FastAlignModel` loads to align any sentences later.

    ``favor_diagonal`` turns on fast_align's ``-d -o -v`` recipe (diagonal prior with optimized
    tension, variational Bayes), the settings its authors recommend.
    """
    import systran_align

    systran_align.generate_alignment_probabilities(
        corpus,
        fwd,
        bwd,
        iterations=iterations,
        favor_diagonal=favor_diagonal,
        optimize_tension=favor_diagonal,
        variational_bayes=favor_diagonal,
    )


class FastAlignModel:
    """Fitted fast_align parameters (both directions); aligns sentences one at a time, so the links
    of a sentence do not depend on what else is aligned with it."""

    def __init__(self, fwd: str, bwd: str):
        import systran_align

        self._aligner = systran_align.Aligner(fwd, bwd)

    def align(
        self, src_words: Sequence[Sequence[str]], tgt_words: Sequence[Sequence[str]], desc: str = "fast_align"
    ) -> Links:
        """The binding's symmetrized links of each pair."""
        results = []
        src_words, tgt_words = list(src_words), list(tgt_words)
        for k in tqdm(
            range(0, len(src_words), _CHUNK), desc=desc, unit="chunk", leave=False, disable=len(src_words) <= _CHUNK
        ):
            batch = self._aligner.align_batch(src_words[k : k + _CHUNK], tgt_words[k : k + _CHUNK])
            results.extend(r["alignments"] for r in batch)
        return Links.from_lists(results)


def fast_align(
    src_words: Sequence[Sequence[str]],
    tgt_words: Sequence[Sequence[str]],
    workdir: str,
    *,
    iterations: int = 5,
    favor_diagonal: bool = True,
    desc: str = "fast_align",
) -> Links:
    """Fit fast_align on these sentences and align them with the fitted parameters."""
    corpus = os.path.join(workdir, "fast_align.input")
    with open(corpus, "w", encoding="utf-8") as f:
        write_fast_align_input(f, src_words, tgt_words)
    fwd, bwd = os.path.join(workdir, "fast_align.fwd"), os.path.join(workdir, "fast_align.bwd")
    fit_fast_align(corpus, fwd, bwd, iterations=iterations, favor_diagonal=favor_diagonal)
    links = FastAlignModel(fwd, bwd).align(src_words, tgt_words, desc=desc)
    for p in (corpus, fwd, bwd):
        os.remove(p)
    return links


def grow_diag_final_and(fwd: np.ndarray, rev: np.ndarray) -> np.ndarray:
    """Koehn et al.'s symmetrization of two directional alignments (both as source-target links)."""
    fwd_set = {tuple(x) for x in np.asarray(fwd).reshape(-1, 2).tolist()}
    rev_set = {tuple(x) for x in np.asarray(rev).reshape(-1, 2).tolist()}
    union = fwd_set | rev_set
    alignment = fwd_set & rev_set
    src_aligned = {i for i, _ in alignment}
    tgt_aligned = {j for _, j in alignment}
    neighbors = [(-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)]
    added = True
    while added:
        added = False
        for i, j in sorted(alignment):
            for di, dj in neighbors:
                cand = (i + di, j + dj)
                if (
                    cand in union
                    and cand not in alignment
                    and (cand[0] not in src_aligned or cand[1] not in tgt_aligned)
                ):
                    alignment.add(cand)
                    src_aligned.add(cand[0])
                    tgt_aligned.add(cand[1])
                    added = True
    for direction in (fwd_set, rev_set):  # final-and: only links between two unaligned words
        for i, j in sorted(direction):
            if i not in src_aligned and j not in tgt_aligned:
                alignment.add((i, j))
                src_aligned.add(i)
                tgt_aligned.add(j)
    return np.array(sorted(alignment), dtype=np.int64).reshape(-1, 2)


def _eflomal():
    try:
        import eflomal
    except ImportError:
        raise PrepareError("--aligner eflomal needs the eflomal package: pip install 'fairseq-weam[eflomal]'") from None
    return eflomal


def _eflomal_links(src_words, tgt_words, workdir: str, priors: Optional[str], desc: str):
    """eflomal (Östling & Tiedemann 2016) in both directions on these sentences (guided by a
    priors file when given), symmetrized with grow-diag-final-and."""
    eflomal = _eflomal()
    fd, fwd_path = tempfile.mkstemp(prefix="eflomal.fwd.", dir=workdir)
    os.close(fd)
    fd, rev_path = tempfile.mkstemp(prefix="eflomal.rev.", dir=workdir)
    os.close(fd)
    prior_file = open(priors, encoding="utf-8") if priors else None
    try:
        eflomal.Aligner().align(
            [" ".join(s) + "\n" for s in src_words],
            [" ".join(t) + "\n" for t in tgt_words],
            links_filename_fwd=fwd_path,
            links_filename_rev=rev_path,
            priors_input=prior_file,
            quiet=True,
        )
        with open(fwd_path, encoding="utf-8") as f, open(rev_path, encoding="utf-8") as r:
            fwd_lines, rev_lines = f.read().split("\n")[: len(src_words)], r.read().split("\n")[: len(src_words)]
    finally:
        if prior_file:
            prior_file.close()
        for p in (fwd_path, rev_path):
            os.remove(p)
    links = [
        grow_diag_final_and(
            parse_pharaoh(a, path=fwd_path, lineno=k + 1), parse_pharaoh(b, path=rev_path, lineno=k + 1)
        )
        for k, (a, b) in enumerate(
            tqdm(list(zip(fwd_lines, rev_lines)), desc=desc, leave=False, disable=len(fwd_lines) <= _CHUNK)
        )
    ]
    return Links.from_lists(links), fwd_lines, rev_lines


def fit_eflomal_priors(src_words, tgt_words, priors: str, workdir: str) -> None:
    """eflomal's fitted knowledge as a file: align the sample, then count its lexical, jump and
    fertility statistics (eflomal's own ``calculate_priors``) into ``priors``, which guides the
    alignment of every later chunk (``EflomalModel``)."""
    eflomal = _eflomal()
    _, fwd, rev = _eflomal_links(src_words, tgt_words, workdir, None, "eflomal (fit)")
    stats = eflomal.calculate_priors([" ".join(s) for s in src_words], [" ".join(t) for t in tgt_words], fwd, rev)
    with open(priors, "w", encoding="utf-8") as f:
        eflomal.write_priors(f, *stats)


class EflomalModel:
    """eflomal guided by fitted priors. Unlike fast_align's fixed tables, eflomal still samples
    on each chunk, so a sentence's links depend (a little) on the chunk it is aligned in."""

    def __init__(self, priors: str, workdir: str):
        self.priors, self.workdir = priors, workdir

    def align(self, src_words, tgt_words, desc: str = "eflomal") -> Links:
        return _eflomal_links(src_words, tgt_words, self.workdir, self.priors, desc)[0]


def import_pharaoh(
    lines: Sequence[str],
    n_src_words: np.ndarray,
    n_tgt_words: np.ndarray,
    *,
    path: str,
    linenos: np.ndarray,
    bad: BadLines,
    pair: str,
):
    """Parse and check Pharaoh lines; returns (Links of the kept lines, keep mask)."""
    keep = np.ones(len(lines), dtype=bool)
    parsed: List[np.ndarray] = []
    for k, line in enumerate(lines):
        lineno = int(linenos[k])
        try:
            links = parse_pharaoh(line, path=path, lineno=lineno)
            check_links_in_range(links, int(n_src_words[k]), int(n_tgt_words[k]), path=path, lineno=lineno)
        except AlignmentError as e:
            # The message already starts with "path:line:"; keep the reason short for the summary.
            reason = "malformed alignment" if "malformed" in str(e) else "alignment link out of range"
            bad.reject(pair, reason, path, lineno, str(e).split(": ", 1)[1])
            keep[k] = False
            continue
        parsed.append(links)
    return Links.from_lists([p.tolist() for p in parsed]), keep


# -- the registry: one object per --aligner -----------------------------------------------------


class Aligner:
    """One ``--aligner``: fitted on the sample in ``fit``, loaded per pair in each shard worker."""

    name: str = ""
    imported: bool = False  # the links come with the corpus (PREFIX.SRC-TGT.ALIGN_SUFFIX files)

    def link_suffix(self, align_suffix: str) -> Optional[str]:
        """The suffix of the corpus's link files, or None when the aligner computes the links."""
        return align_suffix if self.imported else None

    def fit(self, corpus: str, pair: str, model_dir: str, work: str, *, iterations: int) -> None:
        """Fit on ``corpus`` (``source ||| target`` lines); the parameters go into ``model_dir``."""

    def load(self, pair: str, model_dir: str, work: str):
        """The fitted model of ``pair`` (``.align(src_words, tgt_words, desc)``), None if imported."""
        return None


class FastAlign(Aligner):
    name = "fast_align"

    @staticmethod
    def files(pair: str) -> Tuple[str, str]:
        return f"align.{pair}.fwd", f"align.{pair}.bwd"

    def fit(self, corpus, pair, model_dir, work, *, iterations):
        fwd, bwd = (os.path.join(model_dir, name) for name in self.files(pair))
        fit_fast_align(corpus, fwd, bwd, iterations=iterations)

    def load(self, pair, model_dir, work):
        return FastAlignModel(*(os.path.join(model_dir, name) for name in self.files(pair)))


class Eflomal(Aligner):
    name = "eflomal"

    @staticmethod
    def priors(pair: str) -> str:
        return f"align.{pair}.priors"

    def fit(self, corpus, pair, model_dir, work, *, iterations):
        with open(corpus, encoding="utf-8") as f:
            rows = [line.rstrip("\n").split(" ||| ") for line in f]
        fit_eflomal_priors(
            [r[0].split() for r in rows], [r[1].split() for r in rows], os.path.join(model_dir, self.priors(pair)), work
        )

    def load(self, pair, model_dir, work):
        return EflomalModel(os.path.join(model_dir, self.priors(pair)), work)


class Pharaoh(Aligner):
    """Imported links: nothing to fit, nothing to load (``stages`` reads and checks the files)."""

    name = "pharaoh"
    imported = True


REGISTRY = {a.name: a for a in (FastAlign(), Eflomal(), Pharaoh())}
ALIGNERS = tuple(REGISTRY)


def get(name: str) -> Aligner:
    """The aligner of ``--aligner NAME``."""
    if name not in REGISTRY:
        raise PrepareError(f"--aligner must be one of {ALIGNERS}, got {name!r}")
    return REGISTRY[name]
