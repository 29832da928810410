"""Training-family fixtures (tiny BPE tokenizer + tiny random Llama, chat rows): see support/training_fixtures.py.

They override the prepare-family ``tiny_model_dir`` of tests/conftest.py for the tests in this folder.
"""

from support.training_fixtures import *  # noqa: F401,F403  (fixtures)
