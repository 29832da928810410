"""CodeBlock: supervise only the code items and informative tokens that matter.

The structure stage (segmentation, coding items, core tokens, data flow) is pure
Python + tree-sitter and imports no torch/transformers; model-dependent parts live
behind small interfaces and are imported lazily.
"""

from codeblock._version import __version__

__all__ = ["__version__", "CodeBlockPlugin", "CodeBlockCollator"]


def __getattr__(name):  # lazy: `import codeblock` must stay torch-free
    if name == "CodeBlockPlugin":
        from codeblock.integrations.axolotl.plugin import CodeBlockPlugin

        return CodeBlockPlugin
    if name == "CodeBlockCollator":
        from codeblock.training.collator import CodeBlockCollator

        return CodeBlockCollator
    raise AttributeError(f"module 'codeblock' has no attribute {name!r}")
