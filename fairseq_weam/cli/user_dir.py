"""Print the directory to pass as ``--user-dir`` / ``common.user_dir`` wherever you run fairseq,
or with ``--config-dir`` the packaged hydra configs (for ``fairseq-hydra-train --config-dir``)."""

import argparse
import os
import sys

from fairseq_weam.cli import run_cli


def package_dir() -> str:
    import fairseq_weam

    return os.path.dirname(os.path.abspath(fairseq_weam.__file__))


def config_dir() -> str:
    """The hydra configs shipped inside the package (``weam_tiny``, ``xlmr_base_continue``)."""
    return os.path.join(package_dir(), "config", "pretraining")


def run(argv=None):
    p = argparse.ArgumentParser(prog="fairseq-weam-user-dir", description=__doc__)
    p.add_argument("--config-dir", action="store_true", help="print the packaged hydra config directory instead")
    args = p.parse_args(argv)
    print(config_dir() if args.config_dir else package_dir())


def main(argv=None):
    return run_cli("fairseq-weam-user-dir", run, argv)


if __name__ == "__main__":
    sys.exit(main())
