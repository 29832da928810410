"""Stage 1, structure (pure CPU: tree-sitter, networkx; no torch): segments, coding items, core tokens, data flow, reach and bridge.

Submodules are not imported here: importing one module never loads the rest of the stage.
"""
