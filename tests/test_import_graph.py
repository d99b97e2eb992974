"""The project's import graph: no circle, and every import goes down the layers (a library module never
imports what is built on it, nor the command-line script)."""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("baselines", "benchmarks", "fusion", "imagery", "methods", "model", "reproduce")
# From the bottom up; a module may import its own layer or the layers below. The first matching prefix
# decides a module's layer.
LAYERS = (
    ("config", "evaluation", "imagery"),
    ("model",),
    ("data_loader",),
    ("baselines",),
    ("func", "fusion.memory", "fusion.run_folder", "fusion.pair", "fusion.tiling", "fusion.results", "fusion.figures",
     "fusion.monitor", "fusion.patches"),
    ("methods",),
    ("fusion.run", "fusion"),
    ("reproduce", "benchmarks"),
    ("train_all_special",),
)


def project_modules():
    """{module name: source path} of every project module (tests and data excluded)."""
    modules = {}
    for name in ("config", "data_loader", "evaluation", "func", "train_all_special"):
        modules[name] = os.path.join(ROOT, f"{name}.py")
    for package in PACKAGES:
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for file in files:
                if file.endswith(".py"):
                    path = os.path.join(folder, file)
                    name = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                    modules[name.removesuffix(".__init__")] = path
    return modules


def imports(path, modules):
    """The project modules that the module in ``path`` imports, anywhere in it (inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            candidates = [[alias.name] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            candidates = [[f"{node.module}.{alias.name}", node.module] for alias in node.names]
        else:
            continue
        for options in candidates:
            target = next((name for name in options if name in modules), None)
            if target is not None:
                found.add(target)
    return found


def layer(module):
    matches = [(len(prefix), i) for i, prefixes in enumerate(LAYERS) for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]
    if not matches:
        raise AssertionError(f"{module} is in no layer of tests/test_import_graph.py LAYERS: add it")
    return max(matches)[1]


@pytest.fixture(scope="module")
def graph():
    modules = project_modules()
    return {name: imports(path, modules) - {name} for name, path in modules.items()}


def test_the_import_graph_has_no_circle(graph):
    state = {}

    def visit(module, path):
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycle = path[path.index(target):] + [target]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_every_import_goes_down_the_layers(graph):
    upward = [f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})"
              for module, targets in sorted(graph.items()) for target in sorted(targets)
              if layer(target) > layer(module)]
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_module_imports_the_command_line_script(graph):
    assert [m for m, targets in graph.items() if "train_all_special" in targets] == []


def test_the_graph_sees_imports_inside_functions(tmp_path):
    """The check is not fooled by an import placed inside a function."""
    source = tmp_path / "sample.py"
    source.write_text("def f():\n    from fusion.run import fuse\n    import func\n")
    assert imports(str(source), {"fusion.run": "", "func": ""}) == {"fusion.run", "func"}
