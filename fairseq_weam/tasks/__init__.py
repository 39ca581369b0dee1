from fairseq_weam.tasks import weam  # noqa: F401
