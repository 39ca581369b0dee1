"""Reading compiled gettext catalogs (``.mo``), the format Python's ``gettext`` module reads.

We read the file ourselves instead of going through ``gettext.GNUTranslations`` because we need
what that class folds away: message contexts, the English plural form, and per-file errors that
let a corpus builder skip one broken catalog among hundreds instead of stopping.
"""

import re
import struct
from dataclasses import dataclass
from typing import List, Optional, Tuple

from fairseq_weam.core.errors import WeamError

MO_MAGIC = 0x950412DE
CONTEXT_SEP = "\x04"
PLURAL_SEP = "\x00"


class MoFormatError(WeamError, ValueError):
    """A file that is not a valid .mo catalog; the message names the file."""


@dataclass(frozen=True)
class MoMessage:
    msgid: str
    msgstr: str  # first translation (singular form for plural messages)
    context: Optional[str] = None
    msgid_plural: Optional[str] = None


def _charset(header: str) -> str:
    m = re.search(r"charset=([^\s;]+)", header, flags=re.IGNORECASE)
    return m.group(1) if m else "utf-8"


def parse_mo(data: bytes, path: str = "<mo>") -> Tuple[List[MoMessage], str]:
    """Return (messages, charset) of a .mo file's bytes; the header entry is not a message."""
    if len(data) < 28:
        raise MoFormatError(f"{path}: too short for a .mo file ({len(data)} bytes)")
    for order in "<>":
        magic, revision, n, orig_off, trans_off = struct.unpack(order + "5I", data[:20])
        if magic == MO_MAGIC:
            break
    else:
        raise MoFormatError(f"{path}: not a .mo file (bad magic number)")
    if revision >> 16 not in (0, 1):
        raise MoFormatError(f"{path}: unsupported .mo major revision {revision >> 16}")

    def table(offset):
        end = offset + 8 * n
        if end > len(data):
            raise MoFormatError(f"{path}: string table at byte {offset} runs past the end of the file")
        return struct.unpack(f"{order}{2 * n}I", data[offset:end])

    originals, translations = table(orig_off), table(trans_off)

    def string(entries, k):
        length, offset = entries[2 * k], entries[2 * k + 1]
        if offset + length > len(data):
            raise MoFormatError(f"{path}: string {k} runs past the end of the file")
        return data[offset : offset + length]

    raw = [(string(originals, k), string(translations, k)) for k in range(n)]
    charset = "utf-8"
    for msgid, msgstr in raw:
        if msgid == b"":
            charset = _charset(msgstr.decode("ascii", errors="replace"))
            break
    messages = []
    for k, (msgid_b, msgstr_b) in enumerate(raw):
        if msgid_b == b"":
            continue
        try:
            msgid, msgstr = msgid_b.decode(charset), msgstr_b.decode(charset)
        except (UnicodeDecodeError, LookupError) as e:
            raise MoFormatError(f"{path}: message {k} is not valid {charset}: {e}") from None
        context = None
        if CONTEXT_SEP in msgid:
            context, msgid = msgid.split(CONTEXT_SEP, 1)
        msgid, _, plural = msgid.partition(PLURAL_SEP)
        messages.append(
            MoMessage(msgid=msgid, msgstr=msgstr.split(PLURAL_SEP)[0], context=context, msgid_plural=plural or None)
        )
    return messages, charset


def read_mo(path: str) -> List[MoMessage]:
    with open(path, "rb") as f:
        return parse_mo(f.read(), path)[0]
