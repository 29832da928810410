"""Stage 5, prepare: the pipeline over a dataset (stages 1-4), its records and the HTML view of a prepared folder.

Submodules are not imported here: importing one module never loads the rest of the stage.
"""
