"""fairseq-weam: WEAM bilingual-alignment pre-training as a fairseq --user-dir plugin."""

from setuptools import find_packages, setup

setup(
    name="fairseq-weam",
    version="0.1.0",
    description=(
        "Word-Exchange Aligning Model (WEAM) pre-training, TLM/MLM/contrastive baselines and "
        "zero-shot cross-lingual evaluation as a fairseq user-dir plugin"
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["fairseq_weam", "fairseq_weam.*"]),
    package_data={"fairseq_weam": ["config/**/*.yaml"]},
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
        "test": ["pytest>=7", "hypothesis>=6", "eflomal"],
        "eflomal": ["eflomal"],
    },
    entry_points={
        "console_scripts": [
            "fairseq-weam-user-dir = fairseq_weam.cli.user_dir:main",
            "fairseq-weam-demo = fairseq_weam.cli.demo:main",
            "fairseq-weam-corpus = fairseq_weam.cli.build_corpus:main",
            "fairseq-weam-prepare = fairseq_weam.cli.prepare:main",
            "fairseq-weam-retrieval = fairseq_weam.cli.retrieval:main",
            "fairseq-weam-align-eval = fairseq_weam.cli.align_eval:main",
            "fairseq-weam-bli = fairseq_weam.cli.bli:main",
            "fairseq-weam-lexicon = fairseq_weam.cli.silver_lexicon:main",
            "fairseq-weam-xnli = fairseq_weam.cli.xnli:main",
            "fairseq-weam-sweep = fairseq_weam.cli.sweep:main",
        ]
    },
)
