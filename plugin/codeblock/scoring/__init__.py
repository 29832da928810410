"""Stage 2, scoring: per-token log-probs under the scoring model (cached), GCE utility, IFD, sentence embeddings.

Submodules are not imported here: importing one module never loads the rest of the stage.
"""
