"""Per-language node-type tables for the non-Python structure stage (method.md §4).

Every node type here was checked against the installed grammar wheels with
``Language.id_for_node_kind(name, True)`` (tests/structure/clike/test_clike_tables.py keeps it so).
The walker in :mod:`codeblock.structure.clike.items` is table driven: adding a language is adding a
:class:`LangSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

F = frozenset


@dataclass(frozen=True)
class LangSpec:
    name: str
    simple: frozenset  # simple statements -> one item
    compound: frozenset  # compound statements -> header item + recursion
    clauses: frozenset  # clauses / cases -> their own header items
    blocks: frozenset  # block-like containers to recurse into
    comments: frozenset
    functions: frozenset  # node types that open a function scope (declarations and literals)
    classes: frozenset  # node types that open a class-like scope
    class_members_visible: bool  # Java/C++: bare names in methods resolve to class members
    while_loops: frozenset  # headers whose condition re-runs: loops include their own body
    range_loops: frozenset  # for-in / for-of / range / for-each: header runs once
    do_loops: frozenset
    unwrap: frozenset  # statements that wrap a declaration (export, expression_statement, ...)
    skip_children: frozenset = F()  # block children that are no item (C++ `public:`)
    decorators: frozenset = F()  # items of kind "decorator" (Rust attributes)
    boilerplate_stmts: frozenset = F()  # imports, includes, package clauses
    use_identifiers: frozenset = F({"identifier", "type_identifier"})  # leaf types that read a name
    literal_parents: frozenset = F()  # named nodes whose anonymous child is a core literal / type
    non_core_named: frozenset = F()  # named leaves that are not core (`auto`, `mut`)
    non_core_subtrees: frozenset = F()  # whole subtrees that are structural (Java `modifiers`)
    trivial: frozenset = F({"self", "cls", "this", "_"})
    member: dict = field(default_factory=dict)  # member node type -> (object field, property field)
    subscript: frozenset = F()
    params_field: str = "parameters"


_COMMON_TRIVIAL = F({"self", "cls", "this", "_"})

JS_SIMPLE = F({
    "expression_statement", "lexical_declaration", "variable_declaration", "return_statement",
    "throw_statement", "break_statement", "continue_statement", "import_statement", "export_statement",
    "field_definition", "debugger_statement",
})
JS_COMPOUND = F({
    "function_declaration", "generator_function_declaration", "class_declaration", "method_definition",
    "if_statement", "for_statement", "for_in_statement", "while_statement", "do_statement", "try_statement",
    "switch_statement", "labeled_statement", "with_statement",
})
JS_CLAUSES = F({"else_clause", "catch_clause", "finally_clause", "switch_case", "switch_default"})
JS_BLOCKS = F({"statement_block", "class_body", "switch_body"})
JS_FUNCTIONS = F({
    "function_declaration", "generator_function_declaration", "method_definition", "arrow_function",
    "function_expression", "generator_function",
})

JAVASCRIPT = LangSpec(
    name="javascript",
    simple=JS_SIMPLE,
    compound=JS_COMPOUND,
    clauses=JS_CLAUSES,
    blocks=JS_BLOCKS,
    comments=F({"comment", "html_comment"}),
    functions=JS_FUNCTIONS,
    classes=F({"class_declaration", "class"}),
    class_members_visible=False,
    while_loops=F({"while_statement", "for_statement"}),
    range_loops=F({"for_in_statement"}),
    do_loops=F({"do_statement"}),
    unwrap=F({"export_statement", "expression_statement"}),
    boilerplate_stmts=F({"import_statement"}),
    use_identifiers=F({"identifier", "shorthand_property_identifier", "type_identifier"}),
    literal_parents=F({"predefined_type"}),
    member={"member_expression": ("object", "property")},
    subscript=F({"subscript_expression"}),
)

TYPESCRIPT = LangSpec(
    name="typescript",
    simple=JS_SIMPLE | F({"type_alias_declaration", "public_field_definition", "function_signature",
                          "ambient_declaration", "abstract_method_signature", "index_signature"}),
    compound=JS_COMPOUND | F({"interface_declaration", "enum_declaration", "abstract_class_declaration",
                              "internal_module", "module"}),
    clauses=JS_CLAUSES,
    blocks=JS_BLOCKS | F({"interface_body", "enum_body"}),
    comments=F({"comment", "html_comment"}),
    functions=JS_FUNCTIONS,
    classes=F({"class_declaration", "class", "abstract_class_declaration", "interface_declaration"}),
    class_members_visible=False,
    while_loops=F({"while_statement", "for_statement"}),
    range_loops=F({"for_in_statement"}),
    do_loops=F({"do_statement"}),
    unwrap=F({"export_statement", "expression_statement"}),
    boilerplate_stmts=F({"import_statement", "import_alias"}),
    use_identifiers=F({"identifier", "shorthand_property_identifier", "type_identifier"}),
    literal_parents=F({"predefined_type"}),
    member={"member_expression": ("object", "property")},
    subscript=F({"subscript_expression"}),
)

JAVA = LangSpec(
    name="java",
    simple=F({
        "local_variable_declaration", "field_declaration", "expression_statement", "return_statement",
        "throw_statement", "break_statement", "continue_statement", "yield_statement", "import_declaration",
        "package_declaration", "explicit_constructor_invocation", "assert_statement", "constant_declaration",
    }),
    compound=F({
        "class_declaration", "interface_declaration", "enum_declaration", "record_declaration",
        "method_declaration", "constructor_declaration", "if_statement", "for_statement",
        "enhanced_for_statement", "while_statement", "do_statement", "try_statement",
        "try_with_resources_statement", "synchronized_statement", "labeled_statement", "switch_expression",
        "compact_constructor_declaration", "static_initializer", "annotation_type_declaration",
    }),
    clauses=F({"catch_clause", "finally_clause", "switch_block_statement_group", "switch_rule"}),
    blocks=F({"block", "class_body", "switch_block", "constructor_body", "interface_body", "enum_body",
              "enum_body_declarations", "annotation_type_body"}),
    comments=F({"line_comment", "block_comment"}),
    functions=F({"method_declaration", "constructor_declaration", "lambda_expression",
                 "compact_constructor_declaration"}),
    classes=F({"class_declaration", "interface_declaration", "enum_declaration", "record_declaration",
               "object_creation_expression", "annotation_type_declaration"}),
    class_members_visible=True,
    while_loops=F({"while_statement", "for_statement"}),
    range_loops=F({"enhanced_for_statement"}),
    do_loops=F({"do_statement"}),
    unwrap=F({"expression_statement"}),
    boilerplate_stmts=F({"import_declaration", "package_declaration"}),
    literal_parents=F({"integral_type", "floating_point_type"}),
    non_core_subtrees=F({"modifiers"}),
    member={"field_access": ("object", "field"), "method_invocation": ("object", "name")},
    subscript=F({"array_access"}),
)

C_SIMPLE = F({
    "declaration", "expression_statement", "return_statement", "break_statement", "continue_statement",
    "goto_statement", "preproc_include", "preproc_def", "preproc_function_def", "type_definition",
    "field_declaration", "enumerator", "preproc_call",
})
C_COMPOUND = F({
    "function_definition", "if_statement", "for_statement", "while_statement", "do_statement",
    "switch_statement", "labeled_statement", "struct_specifier", "enum_specifier", "union_specifier",
})
C_LITERAL_PARENTS = F({"null", "true", "false"})

C = LangSpec(
    name="c",
    simple=C_SIMPLE,
    compound=C_COMPOUND,
    clauses=F({"else_clause", "case_statement"}),
    blocks=F({"compound_statement", "field_declaration_list", "enumerator_list",
              "preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif", "preproc_elifdef"}),
    comments=F({"comment"}),
    functions=F({"function_definition"}),
    classes=F({"struct_specifier", "union_specifier"}),
    class_members_visible=False,
    while_loops=F({"while_statement", "for_statement"}),
    range_loops=F(),
    do_loops=F({"do_statement"}),
    unwrap=F({"expression_statement"}),
    boilerplate_stmts=F({"preproc_include"}),
    literal_parents=C_LITERAL_PARENTS,
    member={"field_expression": ("argument", "field")},
    subscript=F({"subscript_expression"}),
)

CPP = LangSpec(
    name="cpp",
    simple=C_SIMPLE | F({"using_declaration", "alias_declaration", "throw_statement", "co_return_statement",
                         "static_assert_declaration", "friend_declaration", "namespace_alias_definition"}),
    compound=C_COMPOUND | F({"class_specifier", "namespace_definition", "template_declaration",
                             "for_range_loop", "try_statement"}),
    clauses=F({"else_clause", "case_statement", "catch_clause"}),
    blocks=C.blocks | F({"declaration_list"}),
    comments=F({"comment"}),
    functions=F({"function_definition", "lambda_expression"}),
    classes=F({"struct_specifier", "union_specifier", "class_specifier"}),
    class_members_visible=True,
    while_loops=F({"while_statement", "for_statement"}),
    range_loops=F({"for_range_loop"}),
    do_loops=F({"do_statement"}),
    unwrap=F({"expression_statement"}),
    skip_children=F({"access_specifier"}),
    boilerplate_stmts=F({"preproc_include"}),
    literal_parents=C_LITERAL_PARENTS,
    non_core_named=F({"auto"}),
    member={"field_expression": ("argument", "field")},
    subscript=F({"subscript_expression"}),
)

GO = LangSpec(
    name="go",
    simple=F({
        "short_var_declaration", "var_declaration", "const_declaration", "type_declaration",
        "assignment_statement", "inc_statement", "dec_statement", "expression_statement", "send_statement",
        "go_statement", "defer_statement", "return_statement", "break_statement", "continue_statement",
        "goto_statement", "fallthrough_statement", "import_declaration", "package_clause",
    }),
    compound=F({
        "function_declaration", "method_declaration", "if_statement", "for_statement",
        "expression_switch_statement", "type_switch_statement", "select_statement", "labeled_statement",
    }),
    clauses=F({"expression_case", "default_case", "type_case", "communication_case"}),
    blocks=F({"block", "statement_list"}),
    comments=F({"comment"}),
    functions=F({"function_declaration", "method_declaration", "func_literal"}),
    classes=F(),
    class_members_visible=False,
    while_loops=F({"for_statement"}),  # refined in the walker: a range_clause loop is not while-like
    range_loops=F(),
    do_loops=F(),
    unwrap=F(),
    boilerplate_stmts=F({"import_declaration", "package_clause"}),
    use_identifiers=F({"identifier", "type_identifier", "package_identifier"}),
    member={"selector_expression": ("operand", "field")},
    subscript=F({"index_expression"}),
)

RUST = LangSpec(
    name="rust",
    simple=F({
        "let_declaration", "expression_statement", "use_declaration", "const_item", "static_item", "type_item",
        "macro_invocation", "extern_crate_declaration", "function_signature_item", "field_declaration",
        "enum_variant", "associated_type", "macro_definition",
    }),
    compound=F({
        "function_item", "impl_item", "trait_item", "struct_item", "enum_item", "mod_item", "if_expression",
        "for_expression", "while_expression", "loop_expression", "match_expression", "union_item",
        "foreign_mod_item",
    }),
    clauses=F({"else_clause", "match_arm"}),
    blocks=F({"block", "declaration_list", "match_block", "field_declaration_list", "enum_variant_list"}),
    comments=F({"line_comment", "block_comment"}),
    functions=F({"function_item", "closure_expression"}),
    classes=F({"impl_item", "trait_item"}),
    class_members_visible=False,
    while_loops=F({"while_expression", "loop_expression"}),
    range_loops=F({"for_expression"}),
    do_loops=F(),
    unwrap=F({"expression_statement"}),
    decorators=F({"attribute_item", "inner_attribute_item"}),
    boilerplate_stmts=F({"use_declaration", "extern_crate_declaration"}),
    literal_parents=F({"boolean_literal"}),
    non_core_named=F({"mutable_specifier"}),
    member={"field_expression": ("value", "field")},
    subscript=F({"index_expression"}),
)

SPECS: dict[str, LangSpec] = {
    "javascript": JAVASCRIPT,
    "typescript": TYPESCRIPT,
    "tsx": TYPESCRIPT,
    "java": JAVA,
    "c": C,
    "cpp": CPP,
    "go": GO,
    "rust": RUST,
}

# Fields of a compound node that hold a body (statement, block or clause) rather than header text.
BODY_FIELDS = F({"body", "consequence", "alternative", "handler", "finalizer"})
# Fields that are header text even when they hold a statement-typed node (C `for (int i = 0; ...)`).
HEADER_FIELDS = F({
    "condition", "initializer", "init", "update", "increment", "value", "pattern", "left", "right", "name",
    "parameters", "parameter", "declarator", "type", "label", "kind", "return_type", "receiver", "result",
    "type_parameters", "superclass", "interfaces", "resources", "arguments", "captures", "operator",
    "communication", "alias", "value",
})

# Anonymous tokens that are core in any context (method.md §2(c) plus the §4 additions).
CORE_KEYWORDS = F({
    "return", "yield", "throw", "break", "continue", "await", "new", "delete", "typeof", "instanceof",
    "sizeof", "alignof", "in", "of", "go", "defer", "co_return", "co_await", "co_yield", "not", "and", "or",
    "goto", "fallthrough", "range",
})
CORE_OPERATORS = F({
    "+", "-", "*", "/", "%", "**", "==", "!=", "===", "!==", "<", ">", "<=", ">=", "&&", "||", "!", "~", "&",
    "|", "^", "<<", ">>", ">>>", "+=", "-=", "*=", "/=", "%=", "**=", "&=", "|=", "^=", "<<=", ">>=", ">>>=",
    "&&=", "||=", "??=", "??", "++", "--", ":=", "<-", "&^", "&^=", "..", "..=", "<=>", "not_eq", "bitand",
    "bitor", "xor", "compl",
})
# Tokens that are core only under specific parents.
CONTEXT_CORE = {
    "?": F({"ternary_expression", "conditional_expression", "try_expression"}),
    ":": F({"ternary_expression", "conditional_expression"}),
    "=>": F({"arrow_function", "match_arm"}),
    "->": F({"lambda_expression"}),
    "as": F({"type_cast_expression", "as_expression"}),
}
# Parents under which `<`, `>`, `|`, `!`, `&`, `*` are brackets / markers, not operators.
BRACKET_PARENTS = F({
    "type_arguments", "type_parameters", "template_argument_list", "template_parameter_list",
    "closure_parameters", "macro_invocation", "type_parameter_list",
})

# Method names whose call mutates the receiver (a non-killing def of it), across languages.
MUTATORS = F({
    "append", "extend", "insert", "update", "add", "pop", "remove", "clear", "sort", "reverse", "setdefault",
    "discard", "appendleft", "popleft", "push", "shift", "unshift", "splice", "fill", "set", "delete", "put",
    "putAll", "addAll", "removeAll", "offer", "poll", "push_back", "emplace_back", "pop_back", "push_front",
    "pop_front", "emplace", "erase", "push_str", "truncate", "retain", "dedup", "sort_by", "sort_unstable",
    "drain", "resize", "swap", "addFirst", "addLast", "removeFirst", "removeLast", "setLength",
})

# Identifier-like leaves that name things but are never uses on their own (properties, labels).
QUOTE_CHARS = "'\"`"
