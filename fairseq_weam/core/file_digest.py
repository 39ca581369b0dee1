"""The SHA-256 of a file, read in blocks: what manifests, exports and caches record to tell
whether an input is the one they were made from."""

import hashlib


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
