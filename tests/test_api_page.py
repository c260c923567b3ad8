"""The API reference (docs/api.md and its twin) documents the real API, all of it.

Signatures on the page are written as Python stubs in ```pyi fences: highlighted like Python,
not executed, and parsed here with `ast`. The first line of every such fence names the module
its names live in (`# secure_mnist.training`); a class body lists the members documented.
Each stub is compared with the object it documents:

- functions and methods: parameter names, kinds, defaults and annotations, and the return
  annotation, against `inspect.signature` (annotations as the source spells them);
- `@property`, `@classmethod`, `@staticmethod` and `@dataclass(...)` must match what the class
  really has; a dataclass's annotated fields must be its fields, with their types and defaults;
- class bases, module constants and aliases (`fix_prec = fix_precision`) must be right.

And the other way round: every name in `__all__` of a documented module, and every public
member of every documented class of `secure_mnist`, must appear on the page. The command-line
tables must list exactly the flags of `python -m secure_mnist train` and `bench`, with their
real defaults.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import dataclasses
import importlib
import inspect
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

from docs_support import DOCS, fences

PAGES = [DOCS / "api.md", DOCS / "api.bn.md"]
STUB_LANGUAGE = "pyi"
DECORATORS = {"property", "classmethod", "staticmethod", "dataclass"}
# Modules whose `__all__` must be documented in full, and whose classes must have every public
# member documented (classes defined in these modules, documented on the page).
COMPLETE_MODULES = ("secure_mnist", "secure_mnist.syft", "secure_mnist.data.mnist")


@pytest.fixture(scope="module", autouse=True)
def hooked_torch() -> None:
    """The page documents the methods sy.TorchHook adds to torch: install them first."""
    from secure_mnist import syft as sy

    sy.TorchHook(torch)


# --- reading the page ------------------------------------------------------------------------


@dataclass(frozen=True)
class StubBlock:
    page: Path
    line: int
    module_name: str
    tree: ast.Module

    @property
    def module(self) -> ModuleType:
        return importlib.import_module(self.module_name)

    def where(self, node: ast.AST | None = None) -> str:
        offset = node.lineno - 1 if node is not None and hasattr(node, "lineno") else 0
        return f"{self.page.name}:{self.line + 1 + offset}"


def stub_blocks(page: Path) -> list[StubBlock]:
    blocks = []
    for fence in fences(page.read_text(encoding="utf-8")):
        if fence.language != STUB_LANGUAGE:
            continue
        first = fence.source.splitlines()[0] if fence.source.strip() else ""
        match = re.match(r"#\s*([A-Za-z_][\w.]*)", first)
        assert match, f"{page.name}:{fence.line}: a ```pyi block must start with '# module.name'"
        blocks.append(StubBlock(page, fence.line, match.group(1), ast.parse(fence.source)))
    return blocks


def all_stub_blocks() -> list[StubBlock]:
    return [block for page in PAGES for block in stub_blocks(page)]


def documented_names(module_name: str, page: Path) -> dict[str, ast.stmt]:
    """Top-level names documented for a module on a page."""
    names: dict[str, ast.stmt] = {}
    for block in stub_blocks(page):
        if block.module_name != module_name:
            continue
        for node in block.tree.body:
            for name in _defined_names(node):
                names[name] = node
    return names


def _defined_names(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    return []


# --- comparing ---------------------------------------------------------------------------------


def _namespace(obj: Any) -> dict[str, Any]:
    """Globals an annotation or default of `obj` is written against."""
    target = inspect.unwrap(obj.fget if isinstance(obj, property) else obj)
    module = inspect.getmodule(target)
    namespace = dict(vars(builtins))
    namespace.update(vars(typing))
    if module is not None:
        namespace.update(vars(module))
    return namespace


def _normal(expression: str) -> str:
    return ast.unparse(ast.parse(expression, mode="eval"))


def same_annotation(stub: ast.expr | None, real: Any, namespace: dict[str, Any]) -> bool:
    """Spelled the same as in the source, or (failing that) evaluating to the same object."""
    if stub is None:
        return real is inspect.Parameter.empty
    if real is inspect.Parameter.empty:
        return False
    written = ast.unparse(stub)
    real_text = real if isinstance(real, str) else inspect.formatannotation(real)
    try:
        if _normal(written) == _normal(real_text):
            return True
    except SyntaxError:
        pass
    try:
        stub_value = eval(written, namespace)  # noqa: S307 - our own page, evaluated in a test
        real_value = eval(real, namespace) if isinstance(real, str) else real  # noqa: S307
    except Exception:
        return False
    return stub_value == real_value


def same_default(stub: ast.expr | None, real: Any, namespace: dict[str, Any]) -> bool:
    if stub is None:
        return real is inspect.Parameter.empty
    if real is inspect.Parameter.empty:
        return False
    try:
        value = ast.literal_eval(stub)
    except ValueError:
        value = eval(ast.unparse(stub), namespace)  # noqa: S307 - e.g. `torch`, `torch.add`
    if isinstance(real, (torch.Tensor,)):
        return isinstance(value, torch.Tensor) and torch.equal(value, real)
    return value is real or (type(value) is type(real) and value == real)


def stub_parameters(function: ast.FunctionDef) -> list[tuple[str, inspect._ParameterKind, ast.expr | None, ast.expr | None]]:
    """(name, kind, annotation, default) for every parameter of a stub `def`."""
    args = function.args
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    out = []
    for index, arg in enumerate(positional):
        kind = inspect.Parameter.POSITIONAL_ONLY if index < len(args.posonlyargs) else inspect.Parameter.POSITIONAL_OR_KEYWORD
        out.append((arg.arg, kind, arg.annotation, defaults[index]))
    if args.vararg:
        out.append((args.vararg.arg, inspect.Parameter.VAR_POSITIONAL, args.vararg.annotation, None))
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        out.append((arg.arg, inspect.Parameter.KEYWORD_ONLY, arg.annotation, default))
    if args.kwarg:
        out.append((args.kwarg.arg, inspect.Parameter.VAR_KEYWORD, args.kwarg.annotation, None))
    return out


def signature_problems(stub: ast.FunctionDef, real: Any, drop_first: bool = False) -> list[str]:
    """How a stub `def` differs from the real callable (empty if it matches)."""
    namespace = _namespace(real)
    signature = inspect.signature(real)
    documented = stub_parameters(stub)[1 if drop_first else 0 :]
    actual = list(signature.parameters.values())
    problems = []
    if [name for name, *_ in documented] != [p.name for p in actual]:
        return [f"parameters {[n for n, *_ in documented]} but the code has {[p.name for p in actual]}"]
    for (name, kind, annotation, default), parameter in zip(documented, actual):
        if kind != parameter.kind:
            problems.append(f"{name}: documented as {kind.description}, is {parameter.kind.description}")
        if not same_annotation(annotation, parameter.annotation, namespace):
            problems.append(
                f"{name}: annotation {ast.unparse(annotation) if annotation else '(none)'} "
                f"but the code has {parameter.annotation if parameter.annotation is not parameter.empty else '(none)'}"
            )
        if not same_default(default, parameter.default, namespace):
            problems.append(
                f"{name}: default {ast.unparse(default) if default else '(none)'} "
                f"but the code has {parameter.default!r}"
            )
    if not same_annotation(stub.returns, signature.return_annotation, namespace):
        problems.append(
            f"return annotation {ast.unparse(stub.returns) if stub.returns else '(none)'} but the code has "
            f"{signature.return_annotation if signature.return_annotation is not signature.empty else '(none)'}"
        )
    return problems


def _decorators(node: ast.FunctionDef | ast.ClassDef) -> dict[str, ast.expr]:
    found = {}
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = ast.unparse(target).rsplit(".", 1)[-1]
        assert name in DECORATORS, f"unexpected decorator @{ast.unparse(decorator)} in a stub"
        found[name] = decorator
    return found


def check_function(block: StubBlock, stub: ast.FunctionDef, owner: Any, qualname: str) -> list[str]:
    where = f"{block.where(stub)} {qualname}"
    if not hasattr(owner, stub.name):
        return [f"{where}: documented, but {owner.__name__ if hasattr(owner, '__name__') else owner} has no {stub.name}"]
    static = inspect.getattr_static(owner, stub.name)
    decorators = _decorators(stub)
    kinds = {"property": property, "classmethod": classmethod, "staticmethod": staticmethod}
    for name, kind in kinds.items():
        if (name in decorators) != isinstance(static, kind):
            return [f"{where}: documented {'with' if name in decorators else 'without'} @{name}, the code disagrees"]
    if isinstance(static, property):
        real, drop_first = static.fget, False
    elif isinstance(static, (classmethod, staticmethod)):
        real, drop_first = static.__func__, False
    else:
        real, drop_first = getattr(owner, stub.name), False
    return [f"{where}: {problem}" for problem in signature_problems(stub, real, drop_first)]


def check_class(block: StubBlock, stub: ast.ClassDef, real: Any) -> list[str]:
    where = f"{block.where(stub)} class {stub.name}"
    if not inspect.isclass(real):
        return [f"{where}: documented as a class, is {type(real).__name__}"]
    problems = []
    namespace = _namespace(real)
    own_module = block.module_name.startswith("secure_mnist")
    if stub.bases or own_module:
        bases = [eval(ast.unparse(base), namespace) for base in stub.bases] or [object]  # noqa: S307
        if tuple(bases) != real.__bases__:
            problems.append(f"{where}: bases {[ast.unparse(b) for b in stub.bases]} but the code has {real.__bases__}")
    decorators = _decorators(stub)
    is_dataclass = "__dataclass_fields__" in vars(real)  # decorated itself, not a subclass of one
    if ("dataclass" in decorators) != is_dataclass:
        problems.append(f"{where}: @dataclass on the page and in the code disagree")
    if is_dataclass and "dataclass" in decorators:
        decorator = decorators["dataclass"]
        frozen = any(k.arg == "frozen" and ast.literal_eval(k.value) for k in getattr(decorator, "keywords", []))
        if frozen != real.__dataclass_params__.frozen:
            problems.append(f"{where}: frozen={frozen} on the page, {real.__dataclass_params__.frozen} in the code")
    fields = {f.name: f for f in dataclasses.fields(real)} if is_dataclass else {}
    documented_fields = []
    for node in stub.body:
        if isinstance(node, ast.FunctionDef):
            problems += check_function(block, node, real, f"{stub.name}.{node.name}")
        elif isinstance(node, ast.AnnAssign):
            name = ast.unparse(node.target)
            if name in fields:
                documented_fields.append(name)
                problems += _check_field(block, node, fields[name], namespace, f"{stub.name}.{name}")
            elif not _has_attribute(real, name):
                problems.append(f"{block.where(node)} {stub.name}.{name}: documented attribute not found in the code")
            elif name in getattr(real, "__annotations__", {}) and not same_annotation(
                node.annotation, real.__annotations__[name], namespace
            ):
                problems.append(f"{block.where(node)} {stub.name}.{name}: annotation differs from the code's")
        elif isinstance(node, ast.Assign):
            problems += _check_alias(block, node, real, stub.name)
        elif not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            problems.append(f"{block.where(node)}: unexpected statement in a class stub: {ast.unparse(node)}")
    if "dataclass" in decorators and documented_fields != list(fields):
        problems.append(f"{where}: fields {documented_fields} on the page, {list(fields)} in the code")
    return problems


def _check_field(block: StubBlock, node: ast.AnnAssign, field: dataclasses.Field, namespace: dict, name: str) -> list[str]:
    problems = []
    if not same_annotation(node.annotation, field.type, namespace):
        problems.append(f"{block.where(node)} {name}: type {ast.unparse(node.annotation)}, the code says {field.type}")
    if field.default is not dataclasses.MISSING:
        if node.value is None or not same_default(node.value, field.default, namespace):
            problems.append(f"{block.where(node)} {name}: default should be {field.default!r}")
    elif field.default_factory is not dataclasses.MISSING:  # written as `= field(default_factory=list)`
        factory = None
        if isinstance(node.value, ast.Call) and ast.unparse(node.value.func) == "field":
            factory = next((k.value for k in node.value.keywords if k.arg == "default_factory"), None)
        if factory is None or not _same_factory(eval(ast.unparse(factory), namespace), field.default_factory):  # noqa: S307
            problems.append(
                f"{block.where(node)} {name}: should be written `= field(default_factory={field.default_factory.__name__})`"
            )
    elif node.value is not None:
        problems.append(f"{block.where(node)} {name}: has no default in the code")
    return problems


def _same_factory(documented: Any, real: Any) -> bool:
    """The same factory, or (for a lambda such as `lambda: defaultdict(int)`) one making equal values."""
    if documented is real:
        return True
    if getattr(real, "__name__", "") != "<lambda>" or not callable(documented):
        return False
    made, expected = documented(), real()
    return type(made) is type(expected) and made == expected and getattr(made, "default_factory", None) == getattr(
        expected, "default_factory", None
    )


def _has_attribute(cls: type, name: str) -> bool:
    """Class attribute, slot, class annotation, or assigned as `self.name = ...` / `obj.name = ...` in the class."""
    if hasattr(cls, name) or name in getattr(cls, "__annotations__", {}):
        return True
    source = inspect.getsource(cls)
    return re.search(rf"\b\w+\.{re.escape(name)}\s*(?::[^=\n]+)?=(?!=)", source) is not None


def _check_alias(block: StubBlock, node: ast.Assign, owner: Any, owner_name: str) -> list[str]:
    problems = []
    for target in node.targets:
        name = ast.unparse(target)
        source = ast.unparse(node.value)
        if not isinstance(node.value, ast.Name):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:  # e.g. `Callback = Callable[[BatchLog, int], None]`
                value = eval(source, dict(vars(owner)) if isinstance(owner, ModuleType) else _namespace(owner))  # noqa: S307
            if getattr(owner, name, object()) != value:
                problems.append(f"{block.where(node)} {owner_name}.{name}: is {getattr(owner, name, None)!r}, not {source}")
        elif getattr(owner, name, None) is not getattr(owner, source, object()):
            problems.append(f"{block.where(node)} {owner_name}.{name}: is not an alias of {source}")
    return problems


def check_block(block: StubBlock) -> list[str]:
    problems = []
    module = block.module
    for node in block.tree.body:
        if isinstance(node, ast.FunctionDef):
            problems += check_function(block, node, module, node.name)
        elif isinstance(node, ast.ClassDef):
            if not hasattr(module, node.name):
                problems.append(f"{block.where(node)}: {block.module_name} has no {node.name}")
            else:
                problems += check_class(block, node, getattr(module, node.name))
        elif isinstance(node, ast.AnnAssign):
            name = ast.unparse(node.target)
            if not hasattr(module, name):
                problems.append(f"{block.where(node)}: {block.module_name} has no {name}")
            elif node.value is not None and ast.literal_eval(node.value) != getattr(module, name):
                problems.append(f"{block.where(node)}: {block.module_name}.{name} is {getattr(module, name)!r}")
        elif isinstance(node, ast.Assign):
            problems += _check_alias(block, node, module, block.module_name)
        elif not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            problems.append(f"{block.where(node)}: unexpected statement in a stub: {ast.unparse(node)}")
    return problems


# --- the tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_has_signature_stubs(page: Path) -> None:
    assert len(stub_blocks(page)) >= 5, f"{page.name}: expected the API's signatures in ```pyi blocks"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_documented_signatures_match_the_code(page: Path) -> None:
    problems = [problem for block in stub_blocks(page) for problem in check_block(block)]
    assert not problems, "the API page disagrees with the code:\n" + "\n".join(problems)


@pytest.mark.parametrize("module_name", COMPLETE_MODULES)
def test_every_exported_name_is_documented(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for page in PAGES:
        documented = documented_names(module_name, page)
        missing = sorted(set(module.__all__) - set(documented))
        assert not missing, f"{page.name}: names in {module_name}.__all__ not documented: {missing}"


def _public_members(cls: type) -> set[str]:
    return {name for name in vars(cls) if not name.startswith("_")}


@pytest.mark.parametrize("module_name", COMPLETE_MODULES)
def test_every_public_member_of_a_documented_class_is_documented(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for page in PAGES:
        for name, node in documented_names(module_name, page).items():
            real = getattr(module, name, None)
            if not isinstance(node, ast.ClassDef) or not inspect.isclass(real) or issubclass(real, BaseException):
                continue
            documented = {n for statement in node.body for n in _defined_names(statement)}
            missing = sorted(_public_members(real) - documented)
            assert not missing, f"{page.name}: {module_name}.{name} has undocumented public members: {missing}"


def test_the_checker_catches_a_wrong_signature(tmp_path: Path) -> None:
    """The comparison is not vacuous: a wrong default, a missing parameter, a wrong field are caught."""
    page = tmp_path / "api.md"
    page.write_text(
        "```pyi\n# secure_mnist\n"
        "def share_batch(batch: torch.Tensor, session: Session) -> AutogradTensor: ...\n"
        "class SGD:\n    def __init__(self, params: Iterable[AutogradTensor], lr: float = 0.1, momentum: float = 0.0) -> None: ...\n"
        "@dataclass\nclass FixedPointEncoder:\n    base: int = 10\n"
        "```\n",
        encoding="utf-8",
    )
    problems = [problem for block in stub_blocks(page) for problem in check_block(block)]
    assert any("share_batch: parameters" in p for p in problems), problems
    assert any("lr: default" in p for p in problems), problems
    assert any("frozen" in p for p in problems), problems
    assert any("base: default" in p for p in problems), problems


# --- the command line ------------------------------------------------------------------------


class _Captured(Exception):
    pass


def cli_actions() -> dict[str, dict[str, argparse.Action]]:
    """{subcommand: {--flag: action}} from the real parser of `python -m secure_mnist`."""
    from secure_mnist import __main__ as cli

    captured: dict[str, argparse.ArgumentParser] = {}
    original = argparse.ArgumentParser.parse_args

    def capture(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> Any:
        captured["parser"] = self
        raise _Captured

    argparse.ArgumentParser.parse_args = capture  # type: ignore[method-assign]
    try:
        with pytest.raises(_Captured):
            cli.main([])
    finally:
        argparse.ArgumentParser.parse_args = original  # type: ignore[method-assign]
    (subparsers,) = [a for a in captured["parser"]._actions if isinstance(a, argparse._SubParsersAction)]
    return {
        name: {option: action for action in parser._actions for option in action.option_strings if option.startswith("--")}
        for name, parser in subparsers.choices.items()
    }


def _sections(page: Path) -> dict[str, str]:
    """{heading id: text up to the next heading} for headings with an explicit `{#id}`."""
    text = page.read_text(encoding="utf-8")
    headings = list(re.finditer(r"^#+ .*\{#([\w-]+)\}\s*$", text, re.MULTILINE))
    ends = [m.start() for m in re.finditer(r"^#+ ", text, re.MULTILINE)]
    out = {}
    for heading in headings:
        end = next((e for e in ends if e > heading.start()), len(text))
        out[heading.group(1)] = text[heading.end() : end]
    return out


def flag_table(section: str) -> dict[str, str]:
    """{--flag: default cell} from the rows of the Markdown tables in a section."""
    flags = {}
    for line in section.splitlines():
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        match = re.match(r"`(--[a-z][a-z-]*)", cells[0])
        if match:
            flags[match.group(1)] = cells[1].strip("`")
    return flags


COMMANDS = sorted(cli_actions())


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
@pytest.mark.parametrize("command", COMMANDS)
def test_cli_flags_and_defaults_are_documented(page: Path, command: str) -> None:
    """Each command has a table under `{#cli-<command>}` for its own flags; tables under
    `{#cli-shared-...}` list flags several commands take, and count for every command that
    accepts all of them. Together they must be exactly the command's flags, with its defaults."""
    actions = {flag: action for flag, action in cli_actions()[command].items() if flag != "--help"}
    sections = _sections(page)
    assert f"cli-{command}" in sections, f"{page.name}: no section {{#cli-{command}}} for `{command}`"
    documented = flag_table(sections[f"cli-{command}"])
    for anchor, text in sections.items():
        shared = flag_table(text) if anchor.startswith("cli-shared-") else {}
        if shared and set(shared) <= set(actions):
            assert not set(shared) & set(documented), f"{page.name}: {command} flags listed twice"
            documented.update(shared)
    assert sorted(documented) == sorted(actions), f"{page.name}: flags of {command}"
    for flag, default in documented.items():
        expected = actions[flag].default
        assert ast.literal_eval(default) == expected, f"{page.name}: {command} {flag} defaults to {expected!r}, page says {default}"
