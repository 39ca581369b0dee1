from . import weam  # noqa: F401
