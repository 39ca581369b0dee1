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
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from fairseq_weam.prepare.errors import BadLines, PrepareError

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


def _decode_lines(data: bytes, first_lineno: int = 1) -> Tuple[List[Optional[str]], dict]:
    """``data`` (whole lines, without the final '\\n') split into decoded lines; undecodable
    lines are None and ``bad`` maps their 1-based line number to the error."""
    try:  # fast path: the whole block at once
        lines = data.decode("utf-8").split("\n")
        bad = {}
    except UnicodeDecodeError:
        lines, bad = [], {}
        for k, raw in enumerate(data.split(b"\n"), start=first_lineno):
            try:
                lines.append(raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                lines.append(None)
                bad[k] = f"invalid UTF-8 at byte {e.start} of the line ({raw[e.start : e.start + 4]!r})"
    return [line[:-1] if line is not None and line.endswith("\r") else line for line in lines], bad


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
    if data.startswith(BOM):
        data = data[len(BOM) :]
    if data.endswith(b"\n"):
        data = data[:-1]
    if not data:
        return [], {}
    return _decode_lines(data)


BOM = b"\xef\xbb\xbf"
_BLOCK = 1 << 24


def index_lines(path: str, wanted: Sequence[int] = ()) -> Tuple[int, np.ndarray]:
    """Count the lines of ``path`` as :func:`read_lines` does, streaming, and find the byte offset
    where each line in ``wanted`` (0-based, ascending; the line count itself means end of data)
    starts. Returns (lines, offsets)."""
    wanted = np.asarray(wanted, dtype=np.int64)
    offsets = np.full(len(wanted), -1, dtype=np.int64)
    try:
        f = open(path, "rb")
    except OSError as e:
        raise PrepareError(f"cannot read {path}: {e.strerror}") from None
    with f:
        head = f.read(len(BOM))
        start = len(BOM) if head == BOM else 0
        f.seek(start)
        pos, newlines, last, nbytes = start, 0, b"", 0
        offsets[wanted == 0] = start
        while True:
            block = f.read(_BLOCK)
            if not block:
                break
            nl = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
            # line k (k >= 1) starts after the k-th newline
            hit = (wanted > newlines) & (wanted <= newlines + len(nl))
            offsets[hit] = pos + nl[wanted[hit] - newlines - 1] + 1
            newlines += len(nl)
            pos += len(block)
            nbytes += len(block)
            last = block[-1:]
    n_lines = 0 if nbytes == 0 else newlines + (0 if last == b"\n" else 1)
    if nbytes == 1 and last == b"\n":
        n_lines = 0  # a lone newline is an empty file for read_lines
    offsets[wanted >= n_lines] = pos  # end of data
    return n_lines, offsets


def read_line_range(path: str, start: int, stop: int, first_lineno: int) -> Tuple[List[Optional[str]], dict]:
    """Lines ``first_lineno``... held in bytes [start, stop) of ``path`` (from :func:`index_lines`),
    decoded and checked like :func:`read_lines`."""
    if stop <= start:
        return [], {}
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read(stop - start)
    except OSError as e:
        raise PrepareError(f"cannot read {path}: {e.strerror}") from None
    if data.endswith(b"\n"):
        data = data[:-1]
    return _decode_lines(data, first_lineno)


@dataclass
class Span:
    """Lines [start, stop) (0-based) of a split, with their byte range in each of its files."""

    start: int
    stop: int
    bytes: Dict[str, Tuple[int, int]] = field(default_factory=dict)


def index_split(files: PairFiles, boundaries: Sequence[int] = ()) -> Tuple[int, Dict[str, np.ndarray]]:
    """Line count of a split (checked equal across its files) and, per file, the byte offsets of
    the lines in ``boundaries``."""
    counts, offsets = [], {}
    for path in files.paths:
        n, off = index_lines(path, boundaries)
        counts.append((path, n))
        offsets[path] = off
    _check_counts(files, counts)
    return counts[0][1], offsets


def split_spans(files: PairFiles, start: int, stop: int, chunk_lines: int) -> Tuple[int, List[Span]]:
    """The lines [start, stop) of a split cut into spans of at most ``chunk_lines`` lines
    (``stop`` None: to the end). Returns (lines in the split, spans)."""
    n, _ = index_split(files)
    stop = n if stop is None else min(stop, n)
    start = min(start, stop)
    bounds = list(range(start, stop, max(1, chunk_lines))) + [stop]
    _, offsets = index_split(files, bounds)
    spans = [
        Span(a, b, {p: (int(off[k]), int(off[k + 1])) for p, off in offsets.items()})
        for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))
    ]
    return n, spans


def _check_counts(files: PairFiles, counts: List[Tuple[str, int]]) -> None:
    if len({n for _, n in counts}) > 1:
        listing = " but ".join(f"{p} has {n} lines" for p, n in counts)
        raise PrepareError(f"{files.pair}: line counts differ: {listing}")


def read_split(files: PairFiles, bad: BadLines, span: Optional[Span] = None) -> RawSplit:
    """Read and check one split (or the lines of ``span`` of it); bad lines are reported or
    skipped according to ``bad``."""
    pair = files.pair
    first = 1 if span is None else span.start + 1

    def read(path):
        return read_lines(path) if span is None else read_line_range(path, *span.bytes[path], first)

    if files.joint_path:
        joint, joint_bad = read(files.joint_path)
        src_lines, tgt_lines = [], []
        for k, line in enumerate(joint, start=first):
            parts = line.split(JOINT_SEPARATOR) if line is not None else [None, None]
            if len(parts) != 2:
                parts = [None, None]
                if k not in joint_bad:
                    joint_bad[k] = (
                        f"expected one '{JOINT_SEPARATOR}' between source and target, found "
                        f"{len(line.split(JOINT_SEPARATOR)) - 1}"
                    )
            src_lines.append(parts[0])
            tgt_lines.append(parts[1])
        src_bad = joint_bad
        tgt_bad = {}
        src_path = tgt_path = files.joint_path
        counts = [(files.joint_path, len(joint))]
    else:
        src_lines, src_bad = read(files.src_path)
        tgt_lines, tgt_bad = read(files.tgt_path)
        src_path, tgt_path = files.src_path, files.tgt_path
        counts = [(src_path, len(src_lines)), (tgt_path, len(tgt_lines))]
    align_lines = align_bad = None
    if files.align_path:
        align_lines, align_bad = read(files.align_path)
        counts.append((files.align_path, len(align_lines)))
    _check_counts(files, counts)

    out = RawSplit(files, lines_read=len(src_lines), align=[] if align_lines is not None else None)
    keep_lineno = []
    for k in range(first, first + len(src_lines)):
        s, t = src_lines[k - first], tgt_lines[k - first]
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
            out.align.append(align_lines[k - first])
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
    raise PrepareError(
        f"no text for {src}-{tgt}: expected {stem}.{src} and {stem}.{tgt}, or {stem} with 'source ||| target' lines"
    )
