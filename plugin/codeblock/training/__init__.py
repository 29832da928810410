"""Stage 6, training: sparse LM-head loss, collator, TRL dataset and trainer, checks on supervised fractions, CPU memory tuning.

Submodules are not imported here: importing one module never loads the rest of the stage.
"""
