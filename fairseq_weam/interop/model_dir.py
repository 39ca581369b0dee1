"""A transformers model directory checked before any work is done with it: ``config.json``
readable, weights in safetensors (pickles refused, never unpickled, as import-hf does), and every
weight's shape the one the config implies. Read from the files' headers only (no tensor is
loaded; the model is built on the meta device), so it costs well under a second."""

import json
import os
from typing import Dict, Tuple

from fairseq_weam.core.optional import load_transformers
from fairseq_weam.interop import InteropError
from fairseq_weam.interop.hf_import import PICKLE_SUFFIXES


def safetensors_files(hf_dir: str):
    """The safetensors weight files of ``hf_dir``; a directory holding only pickles is refused."""
    single = os.path.join(hf_dir, "model.safetensors")
    index = os.path.join(hf_dir, "model.safetensors.index.json")
    if os.path.isfile(single):
        return [single]
    if os.path.isfile(index):
        try:
            with open(index, encoding="utf-8") as f:
                names = sorted(set(json.load(f)["weight_map"].values()))
        except (ValueError, KeyError, UnicodeDecodeError) as e:
            raise InteropError(f"{index}: not a safetensors index ({e})") from None
        return [os.path.join(hf_dir, n) for n in names]
    pickles = sorted(n for n in os.listdir(hf_dir) if n.endswith(PICKLE_SUFFIXES))
    if pickles:
        raise InteropError(
            f"{os.path.join(hf_dir, pickles[0])}: weights stored as a pickle, which can run arbitrary code when "
            "loaded; refusing it. Convert it to model.safetensors with a tool you trust"
        )
    raise InteropError(f"{hf_dir}: no model.safetensors (or model.safetensors.index.json)")


def stored_shapes(hf_dir: str) -> Dict[str, Tuple[int, ...]]:
    """``{name: shape}`` of every stored weight, from the safetensors headers."""
    from safetensors import safe_open

    shapes = {}
    for path in safetensors_files(hf_dir):
        try:
            with safe_open(path, framework="pt") as f:
                for key in f.keys():
                    shapes[key] = tuple(f.get_slice(key).get_shape())
        except Exception as e:  # SafetensorError: truncated / not a safetensors file
            raise InteropError(f"{path}: unreadable safetensors file ({e})") from None
    return shapes


def check_model_dir(hf_dir: str, auto_class: str = "AutoModelForQuestionAnswering") -> None:
    """Refuse ``hf_dir`` unless its weights are safetensors whose shapes match ``config.json``
    (a config copied from another model size, a truncated file, pickles only)."""
    tf = load_transformers()
    import torch

    config_path = os.path.join(hf_dir, "config.json")
    if not os.path.isfile(config_path):
        raise InteropError(f"{hf_dir}: no config.json (expected a transformers model directory)")
    try:
        with open(config_path, encoding="utf-8") as f:
            json.load(f)
    except json.JSONDecodeError as e:
        raise InteropError(f"{config_path}:{e.lineno}: not valid JSON ({e.msg})") from None
    except UnicodeDecodeError as e:
        raise InteropError(f"{config_path}: not UTF-8 ({e.reason})") from None
    stored = stored_shapes(hf_dir)
    try:
        config = tf.AutoConfig.from_pretrained(hf_dir, local_files_only=True)
        with torch.device("meta"):
            model = getattr(tf, auto_class).from_config(config)
    except (ValueError, KeyError, TypeError, OSError) as e:
        raise InteropError(f"{config_path}: transformers cannot build a model from it ({e})") from None
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    prefix = getattr(model, "base_model_prefix", "") or ""
    matched = 0
    for key, shape in sorted(stored.items()):
        # Saved from another head (masked LM) or from the bare encoder: with or without the prefix.
        for name in (key, f"{prefix}.{key}", key[len(prefix) + 1 :] if key.startswith(prefix + ".") else None):
            if name in expected:
                matched += 1
                if expected[name] != shape:
                    raise InteropError(
                        f"{hf_dir}: the weights do not match config.json: {key} has shape {list(shape)}, the config "
                        f"implies {list(expected[name])}; the config belongs to another model"
                    )
                break
    if not matched:
        raise InteropError(f"{hf_dir}: none of the stored weights belongs to the model config.json describes")
