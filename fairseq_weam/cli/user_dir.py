"""Print the directory to pass as ``--user-dir`` / ``common.user_dir`` wherever you run fairseq."""

import os


def main():
    import fairseq_weam

    print(os.path.dirname(os.path.abspath(fairseq_weam.__file__)))


if __name__ == "__main__":
    main()
