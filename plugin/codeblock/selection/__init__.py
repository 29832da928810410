"""Stage 3, selection: which pairs to keep, which items and NL tokens fit the budget, and the baseline supervision policies.

Submodules are not imported here: importing one module never loads the rest of the stage.
"""
