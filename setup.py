"""fairseq-weam: WEAM bilingual-alignment pre-training as a fairseq --user-dir plugin."""

from setuptools import find_packages, setup

# protobuf: reading the sentencepiece model's normalizer and piece types.
HF = ["transformers>=5.0,<6", "tokenizers>=0.22", "safetensors>=0.4", "protobuf>=4"]

setup(
    name="fairseq-weam",
    version="0.1.0",
    description=(
        "Word-Exchange Aligning Model (WEAM) pre-training, TLM/MLM/contrastive baselines and "
        "zero-shot cross-lingual evaluation as a fairseq user-dir plugin"
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    # The fast_align binding (systran-align) ships wheels for CPython <= 3.11 only, and no sdist.
    python_requires=">=3.9,<3.12",
    packages=find_packages(include=["fairseq_weam", "fairseq_weam.*"]),
    package_data={"fairseq_weam": ["config/pretraining/*.yaml"]},
    install_requires=[
        # The CPU wheel on this kind of machine; any 2.x >= 2.6 works (safe checkpoint loading).
        "torch>=2.6,<2.15",
        # Upstream fairseq main (2023-10) + the Python 3.11 dataclass fix; PyPI fairseq 0.12.2
        # does not import on Python >= 3.11.
        "fairseq-fixed==0.12.3.1",
        "numpy>=1.24",
        "sentencepiece>=0.1.99",
        # clab/fast_align's C++ behind a Python binding (prebuilt wheels up to CPython 3.11).
        "systran-align>=2.0",
        "tqdm",
        "matplotlib",
        "scipy",
    ],
    extras_require={
        # eflomal: the second aligner backend is tested too (builds from source, seconds).
        # faiss-cpu too, so the BUCC/retrieval tests check its k-NN against the torch path;
        # transformers for the QA and Hugging Face interop tests; ruff: scripts/test.sh lints and
        # checks the formatting first (pyproject.toml; the format's output is pinned by the minor version).
        "test": ["pytest>=7", "hypothesis>=6", "eflomal", "faiss-cpu>=1.8", "ruff>=0.17,<0.18", *HF],
        "eflomal": ["eflomal"],
        # k-NN search for retrieval / BUCC mining (wheels for CPython 3.11 with numpy 2).
        "faiss": ["faiss-cpu>=1.8"],
        # fairseq-weam-export-hf / -import-hf and fairseq-weam-qa (measured: transformers 5.24,
        # tokenizers 0.23, safetensors 0.8, protobuf 7.36 next to torch 2.13 CPU, no torch upgrade).
        "hf": HF,
    },
    entry_points={
        "console_scripts": [
            "fairseq-weam-user-dir = fairseq_weam.cli.user_dir:main",
            "fairseq-weam-demo = fairseq_weam.cli.demo:main",
            "fairseq-weam-corpus = fairseq_weam.cli.build_corpus:main",
            "fairseq-weam-prepare = fairseq_weam.cli.prepare:main",
            "fairseq-weam-retrieval = fairseq_weam.cli.retrieval:main",
            "fairseq-weam-bucc = fairseq_weam.cli.bucc:main",
            "fairseq-weam-align-eval = fairseq_weam.cli.align_eval:main",
            "fairseq-weam-bli = fairseq_weam.cli.bli:main",
            "fairseq-weam-lexicon = fairseq_weam.cli.silver_lexicon:main",
            "fairseq-weam-xnli = fairseq_weam.cli.xnli:main",
            "fairseq-weam-sweep = fairseq_weam.cli.sweep:main",
            "fairseq-weam-objective-stats = fairseq_weam.cli.objective_stats:main",
            "fairseq-weam-qa = fairseq_weam.cli.qa:main",
            "fairseq-weam-export-hf = fairseq_weam.cli.export_hf:main",
            "fairseq-weam-import-hf = fairseq_weam.cli.import_hf:main",
        ]
    },
)
