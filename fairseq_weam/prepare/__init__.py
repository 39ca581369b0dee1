"""Raw parallel text -> binarized, word-aligned WEAM data (``fairseq-weam-prepare``), and the
offline demo corpus built from gettext catalogs (``fairseq-weam-corpus``).

One idea per module:

- ``errors``: the exception users see and the skip-or-stop policy for bad lines;
- ``textio``: reading line-aligned bitext with checks that name file and line;
- ``tokenize``: pre-tokenization, sentencepiece training and encoding, the fairseq dictionary;
- ``aligners``: word alignment (fast_align binding, eflomal, imported Pharaoh files);
- ``binarize``: fairseq indexed datasets for tokens and subword-projected alignments;
- ``summary``: what was read, kept and dropped, alignment coverage, tokens per language;
- ``outdir``: the write-to-temporary-then-rename guarantee;
- ``options``: the settings of a preparation;
- ``stages``: the chain read -> pretokenize -> encode -> check -> align -> binarize over a chunk;
- ``fit``: sentencepiece, dictionary, valid split and aligner parameters, written once as files;
- ``shard``: ``apply``, one slice of the corpus into one shard, streaming, parallel, resumable;
- ``pipeline``: the one-shot preparation (fit, then apply of the whole corpus);
- ``mo_catalog`` and ``gettext_corpus``: the demo corpus.
"""
