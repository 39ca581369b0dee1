"""Reading line-aligned parallel text, with errors that name file and line.

A language pair's split comes either from two files (``PREFIX.SRC-TGT.SRC`` and
``PREFIX.SRC-TGT.TGT``) or from one file of ``source ||| target`` lines (``PREFIX.SRC-TGT``),
optionally with word alignments in Pharaoh format, one line per pair (``PREFIX.SRC-TGT.align``).

Problems that concern one line (invalid UTF-8, an empty side, a missing ``|||``) go through the
bad-line policy (stop, or count and skip); problems that concern whole files (different line
counts, a missing file) always stop, since no line can be trusted.
"""

import glob
import os
import re
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np

from .errors import BadLines, PrepareError

JOINT_SEPARATOR = "|||"


@dataclass
class PairFiles:
    """Where one split of one language pair is read from."""

    src: str
    tgt: str
    src_path: Optional[str] = None  # two-file layout
    tgt_path: Optional[str] = None
    joint_path: Optional[str] = None  # "source ||| target" layout
    align_path: Optional[str] = None  # Pharaoh word alignments, one line per pair

    @property
    def pair(self) -> str:
        return f"{self.src}-{self.tgt}"

    @property
    def paths(self) -> List[str]:
        return [p for p in (self.src_path, self.tgt_path, self.joint_path, self.align_path) if p]


@dataclass
class RawSplit:
    """The good lines of one split of one pair; ``lineno`` is 1-based in the input files."""

    files: PairFiles
    src: List[str] = field(default_factory=list)
    tgt: List[str] = field(default_factory=list)
    lineno: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    align: Optional[List[str]] = None
    lines_read: int = 0

    def __len__(self):
        return len(self.src)

    def select(self, keep: np.ndarray) -> "RawSplit":
        keep = np.asarray(keep, dtype=bool)
        pick = lambda xs: [x for x, k in zip(xs, keep) if k]  # noqa: E731
        return RawSplit(
            self.files,
            pick(self.src),
            pick(self.tgt),
            self.lineno[keep],
            pick(self.align) if self.align is not None else None,
            self.lines_read,
        )


def read_lines(path: str) -> Tuple[List[Optional[str]], dict]:
    """Lines of a UTF-8 file split on '\\n' only (as other line-aligned files count them).

    Returns (lines, bad) where undecodable lines are None and ``bad`` maps their 1-based line
    number to the error. A trailing '\\r' and a leading BOM are removed.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise PrepareError(f"cannot read {path}: {e.strerror}") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if data.endswith(b"\n"):
        data = data[:-1]
    if not data:
        return [], {}
    try:  # fast path: the whole file at once
        lines = data.decode("utf-8").split("\n")
        bad = {}
    except UnicodeDecodeError:
        lines, bad = [], {}
        for k, raw in enumerate(data.split(b"\n"), start=1):
            try:
                lines.append(raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                lines.append(None)
                bad[k] = f"invalid UTF-8 at byte {e.start} of the line ({raw[e.start:e.start + 4]!r})"
    return [line[:-1] if line is not None and line.endswith("\r") else line for line in lines], bad


def _check_counts(files: PairFiles, counts: List[Tuple[str, int]]) -> None:
    if len({n for _, n in counts}) > 1:
        listing = " but ".join(f"{p} has {n} lines" for p, n in counts)
        raise PrepareError(f"{files.pair}: line counts differ: {listing}")


def read_split(files: PairFiles, bad: BadLines) -> RawSplit:
    """Read and check one split; bad lines are reported or skipped according to ``bad``."""
    pair = files.pair
    if files.joint_path:
        joint, joint_bad = read_lines(files.joint_path)
        src_lines, tgt_lines = [], []
        for k, line in enumerate(joint, start=1):
            parts = line.split(JOINT_SEPARATOR) if line is not None else [None, None]
            if len(parts) != 2:
                parts = [None, None]
                if k not in joint_bad:
                    joint_bad[k] = f"expected one '{JOINT_SEPARATOR}' between source and target, found {len(line.split(JOINT_SEPARATOR)) - 1}"
            src_lines.append(parts[0])
            tgt_lines.append(parts[1])
        src_bad = joint_bad
        tgt_bad = {}
        src_path = tgt_path = files.joint_path
        counts = [(files.joint_path, len(joint))]
    else:
        src_lines, src_bad = read_lines(files.src_path)
        tgt_lines, tgt_bad = read_lines(files.tgt_path)
        src_path, tgt_path = files.src_path, files.tgt_path
        counts = [(src_path, len(src_lines)), (tgt_path, len(tgt_lines))]
    align_lines = align_bad = None
    if files.align_path:
        align_lines, align_bad = read_lines(files.align_path)
        counts.append((files.align_path, len(align_lines)))
    _check_counts(files, counts)

    out = RawSplit(files, lines_read=len(src_lines), align=[] if align_lines is not None else None)
    keep_lineno = []
    for k in range(1, len(src_lines) + 1):
        s, t = src_lines[k - 1], tgt_lines[k - 1]
        if k in src_bad:
            reason = "invalid UTF-8" if "UTF-8" in src_bad[k] else "malformed line"
            bad.reject(pair, reason, src_path, k, src_bad[k])
            continue
        if k in tgt_bad:
            bad.reject(pair, "invalid UTF-8", tgt_path, k, tgt_bad[k])
            continue
        if align_bad and k in align_bad:
            bad.reject(pair, "invalid UTF-8", files.align_path, k, align_bad[k])
            continue
        if not s.strip():
            bad.reject(pair, "empty or whitespace-only line", src_path, k, f"{files.src} side")
            continue
        if not t.strip():
            bad.reject(pair, "empty or whitespace-only line", tgt_path, k, f"{files.tgt} side")
            continue
        out.src.append(s)
        out.tgt.append(t)
        if align_lines is not None:
            out.align.append(align_lines[k - 1])
        keep_lineno.append(k)
    out.lineno = np.asarray(keep_lineno, dtype=np.int64)
    return out


_PAIR = r"([^.\-/]+)-([^.\-/]+)"


def discover_pairs(prefix: str) -> List[Tuple[str, str]]:
    """Pairs for which ``PREFIX.SRC-TGT.SRC`` (with ``.TGT``) or ``PREFIX.SRC-TGT`` exists."""
    base = os.path.basename(prefix)
    pattern = re.compile(rf"^{re.escape(base)}\.{_PAIR}(?:\.([^.]+))?$")
    pairs = set()
    for path in glob.glob(glob.escape(prefix) + ".*-*"):
        m = pattern.match(os.path.basename(path))
        if m and (m.group(3) is None or m.group(3) == m.group(1)):
            pairs.add((m.group(1), m.group(2)))
    return sorted(pairs)


def locate(prefix: str, src: str, tgt: str, align_suffix: Optional[str] = None) -> PairFiles:
    """Find the files of pair SRC-TGT under ``prefix`` (two-file layout first)."""
    stem = f"{prefix}.{src}-{tgt}"
    align = f"{stem}.{align_suffix}" if align_suffix else None
    if align and not os.path.exists(align):
        raise PrepareError(f"alignment file not found: {align} (imported alignments need one per pair and split)")
    if os.path.exists(f"{stem}.{src}") or os.path.exists(f"{stem}.{tgt}"):
        for p in (f"{stem}.{src}", f"{stem}.{tgt}"):
            if not os.path.exists(p):
                raise PrepareError(f"{p} not found (its other side exists)")
        return PairFiles(src, tgt, src_path=f"{stem}.{src}", tgt_path=f"{stem}.{tgt}", align_path=align)
    if os.path.exists(stem) and os.path.isfile(stem):
        return PairFiles(src, tgt, joint_path=stem, align_path=align)
    raise PrepareError(f"no text for {src}-{tgt}: expected {stem}.{src} and {stem}.{tgt}, or {stem} with 'source ||| target' lines")
