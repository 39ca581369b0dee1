"""The floor every layer of the package may use; it imports nothing of the package above it
(docs/architecture.md, tests/test_import_graph.py)."""
