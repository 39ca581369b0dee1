from fairseq_weam.criterions import weam  # noqa: F401
