"""The one-shot preparation: raw line-aligned bitext -> a directory ``fairseq-train --task weam``
reads, for a corpus that fits one machine.

It is the two phases of a large preparation run back to back, inside one output directory that
appears only when complete:

1. ``fit`` (``fit.py``), on the whole corpus: sentencepiece (trained or loaded), the dictionary,
   the bad lines, the valid split, the aligner's parameters;
2. ``apply`` (``shard.py``) of the single slice 0/1: the stage chain of ``stages.py`` over every
   chunk (read -> pretokenize -> encode -> check -> align -> binarize), then the datasets;
3. the summary.
"""

import os
import shutil
import time
from dataclasses import asdict

from fairseq_weam.core.outdir import atomic_output_dir, check_output_dir
from fairseq_weam.prepare import summary as summary_mod
from fairseq_weam.prepare.fit import fit, input_files
from fairseq_weam.prepare.options import PrepareOptions, resolve_pairs
from fairseq_weam.prepare.shard import Slice, apply_into, copy_fitted, pair_summary, tokens_per_language

__all__ = ["PrepareOptions", "prepare", "resolve_pairs"]


def prepare(opts: PrepareOptions) -> dict:
    """Run the preparation; returns the summary (also written to OUT/summary.json)."""
    t_start = time.perf_counter()
    opts.check()
    pairs = resolve_pairs(opts)
    inputs = [p for f in input_files(opts, pairs).values() for p in f.paths] + [
        p for p in (opts.spm_model, opts.dictionary) if p
    ]
    check_output_dir(opts.out, opts.overwrite, inputs)
    with atomic_output_dir(opts.out, opts.overwrite, inputs) as tmp:
        model_dir = os.path.join(tmp, ".fit")
        os.makedirs(model_dir)
        manifest = fit(opts, model_dir)
        per_pair, apply_timings = apply_into(
            model_dir,
            manifest,
            opts.trainpref,
            Slice(0, 1),
            tmp,
            os.path.join(tmp, ".chunks"),
            workers=1,
            threads=opts.workers,
            chunk_lines=opts.chunk_lines,
        )
        copy_fitted(model_dir, tmp)
        shutil.rmtree(model_dir)
        shutil.rmtree(os.path.join(tmp, ".chunks"))
        timings = {**manifest["timings_s"], **{f"apply_{k}": round(v, 3) for k, v in apply_timings.items()}}
        timings.pop("total")
        timings["total"] = round(time.perf_counter() - t_start, 3)
        pair_stats = {}
        for pair, e in per_pair.items():
            fitted = manifest["fit"][pair]
            # Bad lines were met (and counted) by fit's pass over every line of every split.
            lines_read = {"train": fitted["lines_read"]["train"], "valid": fitted["lines_read"].get("valid", 0)}
            pair_stats[pair] = pair_summary(lines_read, fitted["dropped"], e["stats"])
        result = {
            "output": os.path.abspath(opts.out),
            "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(opts).items()},
            "pretokenize": manifest["pretokenize"],
            "sentencepiece": manifest["sentencepiece"],
            "dictionary": manifest["dictionary"],
            "lang_pairs": manifest["lang_pairs"],
            "pairs": pair_stats,
            "tokens_per_language": tokens_per_language(per_pair),
            "timings_s": timings,
        }
        if result["options"]["lang_pairs"] is not None:
            result["options"]["lang_pairs"] = manifest["lang_pairs"]
        summary_mod.write_summary(tmp, result)
    return result
