"""Code shared by tests in several folders: fixtures (``*_fixtures``, star-imported by conftests) and helpers.

``tests/`` is on ``sys.path`` (pytest's default ``prepend`` import mode inserts the folder of ``tests/conftest.py``), so
test modules import these as ``support.<module>``.
"""
