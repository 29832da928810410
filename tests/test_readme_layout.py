"""The README's *Layout* table matches the source tree (issue 15): every path exists, every package is listed, and the
row of a package names each of its modules and subfolders in backticks and nothing that is not one."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "plugin" / "codeblock"
ROOTS = ("plugin/", "eval/", "recipes/", "tests/", "constraints.txt")
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*/?$")


def layout_rows(text: str) -> list[tuple[list[Path], str]]:
    """(paths of the first column, text of the second) for each row of the table under ``## Layout``."""
    section = text.split("\n## Layout", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        path_cell, what = line.strip("|").split("|", 1)
        names = re.findall(r"`([^`]+)`", path_cell)
        first = ROOT / names[0]
        base = first if first.is_dir() else first.parent
        paths = [ROOT / n if n.startswith(ROOTS) else base.parent / n for n in names]
        rows.append((paths, what))
    return rows


def entries(folder: Path) -> set[str]:
    """Modules (``name``) and subfolders holding Python (``name/``) of a source folder."""
    out = {p.stem for p in folder.glob("*.py") if p.stem not in ("__init__", "__main__")}
    out |= {d.name + "/" for d in folder.iterdir() if d.is_dir() and any(d.rglob("*.py"))}
    return out


def named(what: str) -> set[str]:
    return {n for n in re.findall(r"`([^`]+)`", what) if IDENTIFIER.match(n)}


ROWS = layout_rows((ROOT / "README.md").read_text(encoding="utf-8"))


def test_table_paths_exist():
    assert ROWS, "README has no ## Layout table"
    for paths, _ in ROWS:
        for path in paths:
            assert path.exists(), f"README layout names {path.relative_to(ROOT)}, which does not exist"


def test_every_package_and_top_level_module_has_a_row():
    listed = {p.resolve() for paths, _ in ROWS for p in paths}
    packages = [d for d in PACKAGE.iterdir() if (d / "__init__.py").is_file()]
    packages += [d for d in (PACKAGE / "integrations").iterdir() if (d / "__init__.py").is_file()]
    modules = [p for p in PACKAGE.glob("*.py") if not p.name.startswith("_")]
    for path in packages + modules + [ROOT / "eval"]:
        covered = path.resolve() in listed or any(c.resolve() in listed for c in path.iterdir() if c.is_dir()) \
            if path.is_dir() else path.resolve() in listed
        assert covered, f"README layout has no row for {path.relative_to(ROOT)}"


def test_each_source_row_names_exactly_its_modules():
    for paths, what in ROWS:
        folders = [p for p in paths if p.is_dir() and any(p.glob("*.py")) and p.name != "perf"
                   and (p.is_relative_to(PACKAGE) or p == ROOT / "eval")]
        if not folders:
            continue
        expected = set().union(*(entries(f) for f in folders))
        own_rows = {p.name + "/" for ps, _ in ROWS for p in ps if p.parent in folders}  # a subfolder with its own row
        missing = expected - named(what) - own_rows
        assert not missing, f"README layout row {[str(f.relative_to(ROOT)) for f in folders]} does not name {sorted(missing)}"
        if folders[0].is_relative_to(PACKAGE):
            from codeblock.cli import SUBCOMMANDS

            known = expected | {"__init__", "codeblock", *SUBCOMMANDS}  # command names may be quoted too
            stale = {n for n in named(what) if n not in known}
            assert not stale, f"README layout row {folders[0].relative_to(ROOT)} names {sorted(stale)}, not in the tree"


def test_the_checks_see_a_missing_module(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8").replace("(`segment`)", "")
    rows = layout_rows(readme)
    structure = next(what for paths, what in rows if paths[0].name == "structure")
    assert "segment" in entries(PACKAGE / "structure") - named(structure)
