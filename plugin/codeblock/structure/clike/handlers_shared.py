"""Def/use handlers that several brace languages share (assignments, updates, members, calls, declarations of
classes and variables); the language-specific ones and the per-language tables are in
:mod:`codeblock.structure.clike.handlers`."""

from __future__ import annotations


def _field(node, name):
    return node.child_by_field_name(name)


def _class_decl(node, st):
    st.name_def(_field(node, "name"))


def _assign(node, st):
    op = node.child_by_field_name("operator")
    st.target(node.child_by_field_name("left"), True, op is not None and op.type != "=")


def _augmented(node, st):
    st.target(node.child_by_field_name("left"), True, True)


def _update(node, st):
    st.target(node.child_by_field_name("argument") or node.named_child(0), True, True)


def _var_declarator(node, st):
    st.bind_pattern(node.child_by_field_name("name"))


def _member(node, st):
    spec = st.spec
    prop = node.child_by_field_name(spec.member[node.type][1])
    if prop is not None:
        st.consumed.add(prop.start_byte)
    parent = node.parent
    if parent is not None and parent.type in spec.member and \
            parent.child_by_field_name(spec.member[parent.type][0]) == node:
        return  # an inner link: the outermost chain records the key
    if node.id in st.def_targets:
        return
    key = st.member_key(node)
    if key is not None:
        st.uses.append(key)


def _call(node, st):
    st.call(node.child_by_field_name("function"))
