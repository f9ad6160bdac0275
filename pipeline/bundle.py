"""Bundle hw02.py and everything it runs into one file a student can submit: `make hw02` (dist/hw02.py).

    python3 -m pipeline.bundle --out dist/hw02.py --author "Ada Lovelace" --netid al123

The graded run gets one file and a Python with numpy and torch, nothing of ours. So the bundle is generated, never
kept by hand: starting from the entry script, every top-level definition it reaches through `from pipeline.x` /
`from stages.x import name` is copied verbatim (comments included) from its source file, in dependency order, and
those imports are dropped. Definitions it does not reach (the DVC file wrappers, the report) are left out. Source
modules must import names, not modules, and two definitions of one name may not both be reached: the bundle has
one namespace, so the build refuses rather than let one shadow the other. Needs only the standard library.
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import re
import subprocess
import sys
import venv
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("pipeline", "stages")  # our code: everything else (numpy, torch, the standard library) stays an import
AUTHOR_LINES = ("# Author:", "# Netid:", "# Aid:")


class BundleError(Exception):
    """The sources break a rule the bundle relies on; the message names the file and line."""


@dataclass
class Module:
    name: str  # dotted, "__main__" for the entry script
    path: Path
    lines: list[str]
    tree: ast.Module
    defines: dict[str, ast.stmt] = field(default_factory=dict)  # top-level name -> its statement
    imports: dict[str, str] = field(default_factory=dict)  # name -> the local module it comes from (any depth)
    depends: list[str] = field(default_factory=list)  # local modules imported, in source order


def is_local(module: str | None) -> bool:
    return module is not None and module.split(".")[0] in PACKAGES


def bound_names(node: ast.stmt) -> list[str]:
    """Names a top-level statement defines."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    targets = (
        node.targets
        if isinstance(node, ast.Assign)
        else [node.target]
        if isinstance(node, (ast.AnnAssign, ast.AugAssign))
        else []
    )
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


def load(name: str, path: Path) -> Module:
    source = path.read_text()
    module = Module(name, path, source.splitlines(), ast.parse(source, str(path)))
    for node in module.tree.body:
        for bound in bound_names(node):
            module.defines[bound] = node
    for node in ast.walk(module.tree):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import) and any(is_local(a.name) for a in node.names):
            raise BundleError(f"{where}: import names from our modules (from pipeline.x import name)")
        if isinstance(node, ast.ImportFrom) and (is_local(node.module) or (node.module is None and node.level)):
            for alias in node.names:
                if node.module in PACKAGES or node.level or (alias.asname and alias.asname != alias.name):
                    raise BundleError(f"{where}: import names from a module, unrenamed and absolute")
                module.imports[alias.name] = node.module
            if node.module not in module.depends:
                module.depends.append(node.module)
    return module


def module_path(name: str) -> Path:
    return ROOT / (name.replace(".", "/") + ".py")


def referenced(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def collect(entry: Path) -> tuple[dict[str, Module], set[tuple[str, int]]]:
    """Every module reachable from the entry, and the statements the entry's run reaches (module name and id)."""
    modules = {"__main__": load("__main__", entry)}
    todo = ["__main__"]
    while todo:
        for dep in modules[todo.pop()].depends:
            if dep not in modules:
                if not module_path(dep).exists():
                    raise BundleError(f"no source file for module {dep}")
                modules[dep] = load(dep, module_path(dep))
                todo.append(dep)
    kept: set[tuple[str, int]] = set()
    owner: dict[str, str] = {}  # name -> module whose definition of it is kept: one namespace
    main = modules["__main__"]
    work = [
        ("__main__", node)
        for node in main.tree.body
        if not isinstance(node, ast.ImportFrom) or not is_local(node.module)
    ]
    while work:
        name, node = work.pop()
        if (name, id(node)) in kept:
            continue
        kept.add((name, id(node)))
        for bound in bound_names(node):
            if owner.setdefault(bound, name) != name:
                raise BundleError(f"{bound} is defined in both {owner[bound]} and {name}: rename one")
        for ref in referenced(node):
            source = name
            while ref not in modules[source].defines and ref in modules[source].imports:
                source = modules[source].imports[ref]
            if ref in modules[source].defines:
                work.append((source, modules[source].defines[ref]))
    return modules, kept


def dependency_order(modules: dict[str, Module]) -> list[str]:
    """Post-order over the import graph from the entry: a module comes after those it imports (top-level
    statements such as default arguments and base classes run at import time)."""
    order, seen = [], set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for dep in modules[name].depends:
            visit(dep)
        order.append(name)

    visit("__main__")
    return order


def statement_text(module: Module, node: ast.stmt, start: int) -> str:
    """Source lines start..end of node (comments and blank lines before it included), with imports of our
    own modules inside it blanked: in the bundle those names are already global."""
    lines = module.lines[start : node.end_lineno]
    for inner in ast.walk(node):
        if isinstance(inner, ast.ImportFrom) and is_local(inner.module):
            for k in range(inner.lineno - 1, inner.end_lineno):
                lines[k - start] = None
    return "\n".join(line for line in lines if line is not None)


def comment(text: str) -> list[str]:
    return [("# " + line).rstrip() for line in text.strip().splitlines()]


def git_commit() -> str:
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
        return done.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def bundle(entry: Path = ROOT / "hw02.py", author: str | None = None, netid: str | None = None) -> str:
    """The text of the single-file program."""
    modules, keep = collect(entry)
    main = modules["__main__"]
    head = main.lines[:3]
    if [line.split(":")[0] + ":" for line in head] != list(AUTHOR_LINES):
        raise BundleError(f"{entry.name}: the first three lines must be {', '.join(AUTHOR_LINES)}")
    if author:
        head[0] = f"# Author: {author}"
    if netid:
        head[1] = f"# Netid: {netid}"
    out = head + [
        f"# Generated by `make hw02` from the evil-twins sources ({git_commit()}): edit those, not this.",
        "# Needs Python 3.10+, numpy and torch; uses joblib for parallel members when installed.",
    ]
    body = [node for node in main.tree.body]
    docstring = body.pop(0) if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) else None
    if docstring is not None:
        out += main.lines[3 : docstring.end_lineno]
    out += ["from __future__ import annotations", ""]
    first_local = next(i for i, node in enumerate(body) if isinstance(node, ast.ImportFrom) and is_local(node.module))
    prelude, rest = body[:first_local], body[first_local:]
    position = docstring.end_lineno if docstring is not None else 3
    for node in prelude:  # the entry's start-up (its clock starts here), before everything else is defined
        out.append(statement_text(main, node, position))
        position = node.end_lineno
    imported = {ast.unparse(node) for node in prelude if isinstance(node, (ast.Import, ast.ImportFrom))}
    for name in dependency_order(modules)[:-1]:
        module = modules[name]
        chosen = [node for node in module.tree.body if (name, id(node)) in keep]
        if not chosen:
            continue
        out += ["", "", f"# ---- {module.path.relative_to(ROOT)} " + "-" * 60]
        doc = ast.get_docstring(module.tree)
        if doc:
            out += comment(doc)
        for node in module.tree.body:  # imports of libraries (each once), then the definitions reached
            library = node.module if isinstance(node, ast.ImportFrom) else ""
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not is_local(library) and library != "__future__":
                line = ast.unparse(node)
                if line not in imported:
                    imported.add(line)
                    out.append(line)
        previous = 0
        for node in module.tree.body:
            if (name, id(node)) in keep:
                out.append(statement_text(module, node, previous).rstrip())
            previous = node.end_lineno
    out += ["", "", f"# ---- {entry.name} " + "-" * 60]
    for node in rest:
        if isinstance(node, ast.ImportFrom) and is_local(node.module):
            position = node.end_lineno
            continue
        out.append(statement_text(main, node, position))
        position = node.end_lineno
    text = "\n".join(out).rstrip() + "\n"
    compile(text, "dist/hw02.py", "exec")  # a bundle that does not parse is a bug here, not the user's
    return text


def python_with_only(folder: Path, *names: str) -> Path:
    """A virtual environment whose site-packages holds only the named distributions and what they require
    (links to this environment's copies): the grader's machine, which has torch and numpy and nothing of ours."""
    venv.create(folder, with_pip=False)
    python = folder / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    seen, todo = set(), list(names)
    while todo:
        name = re.split(r"[ ;<>=!~\[(]", todo.pop(), maxsplit=1)[0]
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # an optional requirement this environment does not have
        todo += [req for req in dist.requires or [] if "extra ==" not in req]
        for top in {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}:
            source = Path(dist.locate_file(top))
            if source.exists() and not (site / top).exists() and top != "__pycache__" and not top.endswith(".pth"):
                (site / top).symlink_to(source)
    return python


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="dist/hw02.py", help="file to write (default: %(default)s)")
    parser.add_argument("--entry", default=str(ROOT / "hw02.py"), help="the script to bundle")
    parser.add_argument("--author", help="your name, for the '# Author:' line")
    parser.add_argument("--netid", help="your netid, for the '# Netid:' line")
    args = parser.parse_args(argv)
    try:
        text = bundle(Path(args.entry).resolve(), args.author, args.netid)
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out} ({len(text.splitlines())} lines): submit this one file", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
