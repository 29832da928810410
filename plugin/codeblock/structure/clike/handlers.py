"""Per-language def/use handlers (method.md §4 "Def and use by language"): node type -> fn(node, facts).

Each handler marks the binding / target identifiers of its node as consumed in a
:class:`~codeblock.structure.clike.defuse.Facts` and records defs, assignments, member keys and calls. Handlers that several languages share live in
:mod:`codeblock.structure.clike.handlers_shared`.
"""

from __future__ import annotations

from codeblock.structure.clike.defuse import Facts
from codeblock.structure.clike.handlers_shared import (_assign, _augmented, _call, _class_decl, _field, _member, _update,
                                                       _var_declarator)


def _fn_decl(params_field="parameters"):
    def handler(node, st: Facts):
        st.name_def(_field(node, "name"), st.nested.get(node.id))
        st.params(node, _field(node, params_field))
    return handler


def _lambda_js(node, st):
    st.params(node, _field(node, "parameters") or _field(node, "parameter"))


def _declarators(node, st, killing=True):
    for i, child in enumerate(node.children):
        if node.field_name_for_child(i) == "declarator":
            st.bind_pattern(_unwrap_declarator(child), None, killing)


def _unwrap_declarator(node):
    while node is not None and node.type in ("init_declarator", "pointer_declarator", "array_declarator",
                                            "function_declarator", "reference_declarator",
                                            "parenthesized_declarator", "attributed_declarator"):
        inner = node.child_by_field_name("declarator")
        if inner is None:
            inner = next((c for c in node.named_children if c.type != "type_qualifier"), None)
        node = inner
    return node


def _c_function(node, st):
    decl = node.child_by_field_name("declarator")
    fn_decl = decl
    while fn_decl is not None and fn_decl.type != "function_declarator":
        fn_decl = fn_decl.child_by_field_name("declarator") or (fn_decl.named_child(0) if fn_decl.named_child_count else None)
    name = _unwrap_declarator(decl)
    if name is not None and name.type in ("identifier", "field_identifier", "qualified_identifier"):
        text = st.text(name)
        if name.type == "qualified_identifier":  # A::m defined out of class: bind the bare name
            text = text.rsplit("::", 1)[-1]
        st.consumed.add(name.start_byte)
        st.binds.append((text, st.scope, True, None, None))
        if st.nested.get(node.id):
            st.funcdefs.append((text, st.scope, st.nested[node.id]))
    if fn_decl is not None:
        st.params(node, fn_decl.child_by_field_name("parameters"))


def _cpp_lambda(node, st):
    decl = node.child_by_field_name("declarator")
    if decl is not None:
        st.params(node, decl.child_by_field_name("parameters"))


def _for_in_js(node, st):
    left = node.child_by_field_name("left")
    if node.child_by_field_name("kind") is not None:
        st.bind_pattern(left, None, False)
    else:
        st.target(left, False)


def _catch_js(node, st):
    st.bind_pattern(node.child_by_field_name("parameter"), None, False)


def _import_js(node, st):
    for clause in node.named_children:
        if clause.type != "import_clause":
            continue
        stack = [clause]
        while stack:
            n = stack.pop()
            if n.type == "import_specifier":
                st.bind_pattern(n.child_by_field_name("alias") or n.child_by_field_name("name"))
            elif n.type == "identifier":
                st.bind_leaf(n)
            else:
                stack.extend(n.named_children)


def _field_js(node, st):
    prop = node.child_by_field_name("property") or node.child_by_field_name("name")
    if prop is not None:
        st.consumed.add(prop.start_byte)
        st.binds.append(("this." + st.text(prop), st.scope, True, None, None))


def _java_invocation(node, st):
    if node.child_by_field_name("object") is None:
        name = node.child_by_field_name("name")
        if name is not None:
            st.calls.append((st.text(name), "name"))
        return
    _member(node, st)
    st.call(node)


def _java_method(node, st):
    st.name_def(node.child_by_field_name("name"), st.nested.get(node.id))
    st.params(node, node.child_by_field_name("parameters"))


def _java_lambda(node, st):
    st.params(node, node.child_by_field_name("parameters"))


def _java_for(node, st):
    st.bind_pattern(node.child_by_field_name("name"), None, False)


def _java_catch(node, st):
    for child in node.named_children:
        if child.type == "catch_formal_parameter":
            st.bind_pattern(child.child_by_field_name("name"), None, False)


def _java_import(node, st):
    last = None
    for child in node.named_children:
        if child.type == "asterisk":
            return
        last = child
    if last is not None and last.type == "scoped_identifier":
        last = last.child_by_field_name("name")
    if last is not None and last.type == "identifier":
        st.bind_leaf(last)


def _c_declaration(node, st):
    _declarators(node, st)


def _c_named(node, st):
    name = node.child_by_field_name("name")
    if name is not None:
        st.bind_leaf(name)


def _c_typedef(node, st):
    for i, child in enumerate(node.children):
        if node.field_name_for_child(i) == "declarator":
            leaf = _unwrap_declarator(child)
            if leaf is not None and leaf.type in ("type_identifier", "primitive_type", "identifier"):
                st.bind_leaf(leaf)


def _cpp_range_for(node, st):
    st.bind_pattern(_unwrap_declarator(node.child_by_field_name("declarator")), None, False)


def _cpp_catch(node, st):
    st.bind_pattern(node.child_by_field_name("parameters"), None, False)


def _go_short_var(node, st):
    st.bind_pattern(node.child_by_field_name("left"))


def _go_spec(node, st):
    for i, child in enumerate(node.children):
        if node.field_name_for_child(i) == "name":
            st.bind_leaf(child)


def _go_assign(node, st):
    op = node.child_by_field_name("operator")
    left = node.child_by_field_name("left")
    if left is not None:
        for child in left.named_children:
            st.target(child, True, op is not None and op.type != "=")


def _go_range(node, st):
    left = node.child_by_field_name("left")
    if any(c.type == ":=" for c in node.children):
        st.bind_pattern(left, None, False)
    elif left is not None:
        for child in left.named_children:
            st.target(child, False)


def _go_function(node, st):
    if node.type == "function_declaration":
        st.name_def(node.child_by_field_name("name"), st.nested.get(node.id))
    for field_name in ("receiver", "parameters", "result"):
        part = node.child_by_field_name(field_name)
        if part is not None and part.type == "parameter_list":
            st.params(node, part)


def _go_import(node, st):
    name = node.child_by_field_name("name")
    if name is not None:
        st.bind_leaf(name)
        return
    path = node.child_by_field_name("path")
    if path is not None:
        text = st.text(path).strip("\"`")
        if text:
            st.binds.append((text.rsplit("/", 1)[-1], st.scope, True, None, None))


def _go_type_switch(node, st):
    alias = node.child_by_field_name("alias")
    if alias is not None:
        st.bind_pattern(alias)


def _rust_let(node, st):
    st.bind_pattern(node.child_by_field_name("pattern"))


def _rust_nonkilling_pattern(node, st):
    st.bind_pattern(node.child_by_field_name("pattern"), None, False)


def _rust_function(node, st):
    st.name_def(node.child_by_field_name("name"), st.nested.get(node.id))
    st.params(node, node.child_by_field_name("parameters"))


def _rust_closure(node, st):
    st.params(node, node.child_by_field_name("parameters"))


def _rust_index(node, st):
    pass  # plain uses; an index target is handled by `target`


def _rust_use(node, st):
    stack = [node.child_by_field_name("argument")]
    while stack:
        n = stack.pop()
        if n is None:
            continue
        if n.type == "identifier":
            st.bind_leaf(n)
        elif n.type == "scoped_identifier":
            stack.append(n.child_by_field_name("name"))
        elif n.type == "use_as_clause":
            stack.append(n.child_by_field_name("alias"))
        elif n.type in ("use_list", "scoped_use_list"):
            stack.extend(n.child_by_field_name("list").named_children if n.type == "scoped_use_list"
                         and n.child_by_field_name("list") is not None else n.named_children)


def _rust_macro(node, st):
    macro = node.child_by_field_name("macro")
    if macro is not None:
        st.consumed.add(macro.start_byte)


_JS = {
    "variable_declarator": _var_declarator,
    "assignment_expression": _assign,
    "augmented_assignment_expression": _augmented,
    "update_expression": _update,
    "function_declaration": _fn_decl(),
    "generator_function_declaration": _fn_decl(),
    "function_signature": _class_decl,
    "method_definition": _fn_decl(),
    "arrow_function": _lambda_js,
    "function_expression": _lambda_js,
    "generator_function": _lambda_js,
    "class_declaration": _class_decl,
    "abstract_class_declaration": _class_decl,
    "interface_declaration": _class_decl,
    "enum_declaration": _class_decl,
    "type_alias_declaration": _class_decl,
    "for_in_statement": _for_in_js,
    "catch_clause": _catch_js,
    "import_statement": _import_js,
    "field_definition": _field_js,
    "public_field_definition": _field_js,
    "member_expression": _member,
    "call_expression": _call,
}
_JAVA = {
    "variable_declarator": _var_declarator,
    "assignment_expression": _assign,
    "update_expression": _update,
    "method_declaration": _java_method,
    "constructor_declaration": _java_method,
    "lambda_expression": _java_lambda,
    "class_declaration": _class_decl,
    "interface_declaration": _class_decl,
    "enum_declaration": _class_decl,
    "record_declaration": _class_decl,
    "enhanced_for_statement": _java_for,
    "catch_clause": _java_catch,
    "import_declaration": _java_import,
    "field_access": _member,
    "method_invocation": _java_invocation,
    "resource": _var_declarator,
}
_C = {
    "declaration": _c_declaration,
    "field_declaration": _c_declaration,
    "assignment_expression": _assign,
    "update_expression": _update,
    "function_definition": _c_function,
    "lambda_expression": _cpp_lambda,
    "struct_specifier": _c_named,
    "class_specifier": _c_named,
    "enum_specifier": _c_named,
    "union_specifier": _c_named,
    "preproc_def": _c_named,
    "preproc_function_def": _c_named,
    "enumerator": _c_named,
    "type_definition": _c_typedef,
    "alias_declaration": _c_named,
    "for_range_loop": _cpp_range_for,
    "catch_clause": _cpp_catch,
    "field_expression": _member,
    "call_expression": _call,
}
_GO = {
    "short_var_declaration": _go_short_var,
    "var_spec": _go_spec,
    "const_spec": _go_spec,
    "type_spec": _go_spec,
    "type_alias": _go_spec,
    "assignment_statement": _go_assign,
    "inc_statement": _update,
    "dec_statement": _update,
    "range_clause": _go_range,
    "function_declaration": _go_function,
    "method_declaration": _go_function,
    "func_literal": _go_function,
    "import_spec": _go_import,
    "type_switch_statement": _go_type_switch,
    "selector_expression": _member,
    "call_expression": _call,
}
_RUST = {
    "let_declaration": _rust_let,
    "assignment_expression": _assign,
    "compound_assignment_expr": _augmented,
    "for_expression": _rust_nonkilling_pattern,
    "match_arm": lambda node, st: st.bind_pattern(node.child_by_field_name("pattern"), None, False),
    "let_condition": _rust_nonkilling_pattern,
    "function_item": _rust_function,
    "function_signature_item": _class_decl,
    "closure_expression": _rust_closure,
    "struct_item": _class_decl,
    "enum_item": _class_decl,
    "trait_item": _class_decl,
    "type_item": _class_decl,
    "const_item": _class_decl,
    "static_item": _class_decl,
    "mod_item": _class_decl,
    "union_item": _class_decl,
    "use_declaration": _rust_use,
    "macro_invocation": _rust_macro,
    "field_expression": _member,
    "call_expression": _call,
}

HANDLERS = {
    "javascript": _JS,
    "typescript": _JS,
    "tsx": _JS,
    "java": _JAVA,
    "c": _C,
    "cpp": _C,
    "go": _GO,
    "rust": _RUST,
}
