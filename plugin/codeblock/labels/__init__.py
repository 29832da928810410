"""Stage 4, labels: chat rendering, character spans to tokens, label arrays, packing.

Submodules are not imported here: importing one module never loads the rest of the stage.
"""
