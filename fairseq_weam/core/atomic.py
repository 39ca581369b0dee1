"""Result files that are whole or absent: written to a temporary name, then renamed."""

import json
import os


def write_text_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` so that a crash leaves the old file (or none), never half of it."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: str, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2) + "\n")
