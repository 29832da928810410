"""Every node type named in the non-Python tables exists in the installed grammar wheels (method.md §4:
"checked with Language.id_for_node_kind"), so a grammar upgrade that renames a type fails loudly."""

from __future__ import annotations

import pytest

from codeblock.structure.clike.handlers import HANDLERS
from codeblock.structure.clike.tables import SPECS
from codeblock.structure.languages import get_language

SET_FIELDS = ("simple", "compound", "clauses", "blocks", "comments", "functions", "classes", "while_loops",
              "range_loops", "do_loops", "unwrap", "skip_children", "decorators", "boilerplate_stmts",
              "use_identifiers", "literal_parents", "non_core_named", "non_core_subtrees", "subscript")

# The JS table is shared with TypeScript and the C table with C++: a name must exist in its family.
FAMILY = {"javascript": ("javascript", "typescript", "tsx"), "typescript": ("javascript", "typescript", "tsx"),
          "tsx": ("javascript", "typescript", "tsx"), "c": ("c", "cpp"), "cpp": ("c", "cpp")}


@pytest.mark.parametrize("language", sorted(SPECS))
def test_table_node_types_exist(language):
    grammar = get_language(language)
    family = [get_language(name) for name in FAMILY.get(language, (language,))]
    spec = SPECS[language]
    names = set()
    for field in SET_FIELDS:
        names |= set(getattr(spec, field))
    names |= set(spec.member)
    names |= set(HANDLERS[language])
    missing = sorted(n for n in names if all(g.id_for_node_kind(n, True) is None for g in family))
    assert not missing, f"{language}: unknown node types {missing}"
    core = spec.simple | spec.compound | spec.blocks
    assert sum(grammar.id_for_node_kind(n, True) is not None for n in core) >= 0.9 * len(core)
