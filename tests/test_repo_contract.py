"""The repository keeps its promises: README vs CI, dvc.yaml deps vs imports, params vs stages."""

from __future__ import annotations

import ast
import re

import pytest
from ruamel.yaml import YAML

from tests.conftest import REPO

STAGE_SCRIPTS = {"train", "export", "quantize", "parity", "benchmark", "recommend"}


def dvc_stages() -> dict:
    return YAML(typ="safe").load((REPO / "dvc.yaml").read_text())["stages"]


def quick_start() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_readme_has_two_setup_commands_and_ci_runs_the_test_one():
    commands = quick_start()
    assert len(commands) == 2
    assert "dvc repro" in commands[0] and "dvc metrics show" in commands[0]
    assert "pytest" in commands[1]
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert commands[1] in ci


def local_imports(path) -> set[str]:
    """onnxship modules imported by ``path``, directly or through other onnxship modules (importing
    a package runs its ``__init__.py``, whose imports count; the ``__init__.py`` files themselves
    are not listed)."""
    found, todo = set(), [path]
    while todo:
        tree = ast.parse(todo.pop().read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("onnxship"):
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("onnxship")]
            for name in names:
                module = REPO / (name.replace(".", "/") + ".py")
                if not module.exists():
                    module = REPO / name.replace(".", "/") / "__init__.py"
                if module.exists() and module not in found:
                    found.add(module)
                    todo.append(module)
    return {str(m.relative_to(REPO)) for m in found if m.name != "__init__.py"}


UNPICKLES = "onnxship/train/transformers.py"  # unpickling the model runs our transformers' code


def test_every_stage_depends_on_exactly_the_code_it_runs():
    stages = dvc_stages()
    assert set(stages) == STAGE_SCRIPTS
    for name, stage in stages.items():
        script = REPO / "scripts" / f"{name}.py"
        # `-m` from the project root: the stage imports the onnxship of the folder it runs in (DVC's
        # experiment copies under .dvc/tmp/exps/ included), not the editable install's checkout.
        assert stage["cmd"] == f"python -m scripts.{name}"
        assert f"scripts/{name}.py" in stage["deps"] and "requirements.txt" in stage["deps"]
        imported = local_imports(script)
        if "artifacts/best_model.joblib" in stage["deps"] or name == "train":
            imported.add(UNPICKLES)
        listed = {dep for dep in stage["deps"] if dep.startswith("onnxship/")}
        assert not imported - listed, f"stage {name} does not list {sorted(imported - listed)} under deps"
        assert not listed - imported, f"stage {name} lists {sorted(listed - imported)}, which it never runs"


def test_each_helper_is_a_dep_only_of_the_stages_that_own_it():
    # Issue 19: role inference is train's, each plot writer its stage's; an edit to one re-runs only
    # its stage (and what its outputs feed), not every stage that shares a module with it.
    stages = dvc_stages()
    owners = {
        "onnxship/train/data.py": {"train"},
        "onnxship/verify/gate.py": {"parity"},
        "onnxship/verify/benchmark.py": {"benchmark"},
    }
    for module, expected in owners.items():
        assert {name for name, stage in stages.items() if module in stage["deps"]} == expected, module


# Stages that run your modules: train imports factories and train.numeric_transformer, export
# registers export.converter_modules, and these plus parity and benchmark unpickle a model that may
# hold your classes. quantize and recommend run none of them.
RUNS_PLUGINS = {"train", "export", "parity", "benchmark"}


def test_the_stages_that_run_your_modules_depend_on_plugins_and_no_other():
    stages = dvc_stages()
    assert {name for name, stage in stages.items() if "plugins" in stage["deps"]} == RUNS_PLUGINS
    for name, stage in stages.items():
        if "artifacts/best_model.joblib" in stage["deps"]:
            assert name in RUNS_PLUGINS, f"stage {name} unpickles the model but does not list plugins"
    # A fitted model of yours (train.fitted_model) lives in models/: replacing it re-runs train.
    assert "models" in stages["train"]["deps"] and (REPO / "models").is_dir()
    assert (REPO / "plugins" / "my_models.py").is_file()


def test_the_deps_check_sees_extra_and_missing_modules(tmp_path):
    # The check above on a made-up stage: one module too many, one missing.
    script = tmp_path / "stage.py"
    script.write_text("from onnxship.core import files\n")
    assert local_imports(script) == {"onnxship/core/files.py", "onnxship/core/errors.py"}
    # Importing a package runs its __init__.py: what that imports is code the stage runs.
    script.write_text("from onnxship.verify.diagnose import diagnose\n")
    assert {"onnxship/verify/diagnose/run.py", "onnxship/verify/diagnose/int8.py"} <= local_imports(script)


def test_artifact_paths_are_the_ones_dvc_yaml_declares():
    from onnxship.core.paths import Artifacts

    paths = Artifacts()
    named = {
        str(getattr(paths, attr)) for attr in dir(Artifacts) if isinstance(getattr(Artifacts, attr), property)
    } | {str(paths.plot(name)) for name in ("roc.csv", "pr.csv", "prob_diff.csv", "latency.csv")}
    declared = set()
    for stage in dvc_stages().values():
        for key in ("outs", "metrics"):
            for out in stage.get(key, []):
                declared.add(out if isinstance(out, str) else next(iter(out)))
    assert named == declared


REPORTS = [
    "lineage.json",
    "quantize_report.json",
    "parity_report.json",
    "benchmark.json",
    "recommendation.json",
]


def out_options(stage: dict, kind: str) -> dict[str, dict]:
    """{path: options} of a stage's ``outs`` or ``metrics`` (an entry is a path or {path: options})."""
    return {
        (entry if isinstance(entry, str) else next(iter(entry))): (
            {} if isinstance(entry, str) else next(iter(entry.values()))
        )
        for entry in stage.get(kind, [])
    }


def test_the_headline_is_the_only_metric_and_the_full_reports_are_committed_outputs():
    # `dvc metrics show` prints one short row (tests/test_pipeline_e2e.py measures its width) instead
    # of every number of five reports; the reports stay in git, so `dvc metrics diff` and the docs'
    # `git show <rev>:artifacts/parity_report.json` work without a pull.
    stages = dvc_stages()
    metrics = {
        path: (name, opts)
        for name, stage in stages.items()
        for path, opts in out_options(stage, "metrics").items()
    }
    assert metrics == {"artifacts/metrics.json": ("recommend", {"cache": False})}
    outs = {path: opts for stage in stages.values() for path, opts in out_options(stage, "outs").items()}
    for report in REPORTS:
        assert outs[f"artifacts/{report}"].get("cache") is False, report
    # What the headline reads, the recommend stage depends on.
    assert {f"artifacts/{r}" for r in ("lineage.json", "parity_report.json", "benchmark.json")} <= set(
        stages["recommend"]["deps"]
    )


def test_the_shipped_model_is_a_registry_artifact_the_pipeline_writes():
    artifacts = YAML(typ="safe").load((REPO / "dvc.yaml").read_text())["artifacts"]
    assert list(artifacts) == ["model"]
    model = artifacts["model"]
    assert model["type"] == "model" and model["desc"] and model["labels"]
    from onnxship.core.paths import Artifacts

    assert model["path"] == str(Artifacts().model_onnx) in out_options(dvc_stages()["export"], "outs")


# The light scorer's folders: what a service installs with numpy and onnxruntime alone.
LIGHT = ("onnxship/contract", "onnxship/serve")
LIGHT_ALLOWED = {"numpy", "onnxruntime", "onnxship"}
# onnxship/contract/schema.py validates the contract files with jsonschema (the standard validator,
# draft 2020-12): the one third-party import the light scorer adds (docs/contract.md).
VALIDATOR = ("onnxship/contract/schema.py", "jsonschema")
# The one exception: Spark batch scoring, an optional extra (requirements-spark.txt), may also import
# pyspark, pandas and pyarrow (inside functions; tests/test_spark.py checks that importing it and the
# standalone scorer pulls in none of them).
SPARK = "onnxship/serve/spark"
SPARK_ALLOWED = LIGHT_ALLOWED | {"pyspark", "pandas", "pyarrow"}
# And the HTTP server, another optional extra (requirements-serve.txt): Starlette and uvicorn, imported
# only by its server and app modules (the CLI imports them when asked to serve, not before).
HTTP = "onnxship/serve/http"
HTTP_ALLOWED = LIGHT_ALLOWED | {"starlette", "uvicorn"}
HTTP_MODULES = {"server.py", "app.py"}
LIGHT_ONNXSHIP = ("onnxship.contract", "onnxship.serve", "onnxship.core.errors", "onnxship.core.files",
                  "onnxship.core.paths")  # fmt: skip


def imported_modules(path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module} | {
                f"{node.module}.{a.name}" for a in node.names if node.module == "onnxship"
            }
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return names


def test_the_light_scorer_imports_only_numpy_onnxruntime_and_the_standard_library():
    import sys

    files = [f for folder in LIGHT for f in sorted((REPO / folder).rglob("*.py"))]
    files += [REPO / "onnxship" / "core" / n for n in ("errors.py", "files.py", "paths.py")]
    assert len(files) > 8 and any(SPARK in str(f) for f in files)
    for path in files:
        allowed = SPARK_ALLOWED if path.parent == REPO / SPARK else LIGHT_ALLOWED
        if path.parent == REPO / HTTP and path.name in HTTP_MODULES:
            allowed = HTTP_ALLOWED
        if str(path.relative_to(REPO)) == VALIDATOR[0]:
            allowed = LIGHT_ALLOWED | {VALIDATOR[1]}
        for name in imported_modules(path):
            top = name.split(".")[0]
            if top == "onnxship":
                assert name == "onnxship" or name.startswith(LIGHT_ONNXSHIP), f"{path.name} imports {name}"
            else:
                assert top in sys.stdlib_module_names or top in allowed, f"{path.name} imports {name}"


def test_the_scorer_cli_imports_no_http_stack_until_asked_to_serve():
    import json
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "from onnxship.serve import cli\n"
        "from onnxship.serve.http import batcher, options, protocol\n"
        "print(json.dumps(sorted(n for n in sys.modules if n.split('.')[0] in ('starlette', 'uvicorn'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []


def test_package_imports_go_one_way():
    """core <- contract <- serve, and core, contract <- train <- convert <- verify: no cycles."""
    order = ["core", "contract", "serve", "train", "convert", "verify"]
    allowed = {
        "core": {"core"},
        "contract": {"core", "contract"},
        "serve": {"core", "contract", "serve"},
        "train": {"core", "contract", "train"},
        "convert": {"core", "contract", "train", "convert"},
        "verify": {"core", "contract", "serve", "train", "convert", "verify"},
    }
    for folder in order:
        for path in sorted((REPO / "onnxship" / folder).rglob("*.py")):  # sub-packages too
            for name in imported_modules(path):
                parts = name.split(".")
                if parts[0] != "onnxship" or len(parts) < 2:
                    continue
                assert parts[1] in allowed[folder], f"{path.relative_to(REPO)} imports {name}"


def test_every_params_section_is_declared_by_a_stage_that_reads_it():
    params = YAML(typ="safe").load((REPO / "params.yaml").read_text())
    declared = {s.split(".")[0] for stage in dvc_stages().values() for s in stage.get("params", [])}
    assert declared == set(params)
    # And each stage reads what it declares: load_params(...).<section> or params.<section>.
    for name, stage in dvc_stages().items():
        source = (REPO / "scripts" / f"{name}.py").read_text()
        for section in stage["params"]:
            assert re.search(rf"(load_params\([^)]*\)|params)\.{section}\b", source), (name, section)


def test_model_files_are_not_in_git():
    import subprocess

    tracked = subprocess.run(["git", "ls-files", "artifacts"], cwd=REPO, capture_output=True, text=True)
    assert not re.search(r"\.(onnx|joblib|pkl)$", tracked.stdout, re.M)


# --- Every params.yaml key is declared by the stages that read it ------------------------------
# The test above checks that each stage reads the sections it declares. The converse matters more:
# a stage reading a section it does not declare is not re-run by DVC when that section changes.


def sections_read(source: str) -> set[str]:
    """Sections of params.yaml a stage script reads: `load_params(...).S`, or `P.S` where
    `P = load_params(...)`. A whole-params object used any other way (passed on, iterated) could
    reach any section, which makes the stage's reads unknowable: that raises ValueError."""
    tree = ast.parse(source)

    def is_load(node: ast.AST) -> bool:
        return isinstance(node, ast.Call) and getattr(node.func, "id", None) == "load_params"

    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    read, whole = set(), set()
    for call in (n for n in ast.walk(tree) if is_load(n)):
        parent = parents[call]
        if isinstance(parent, ast.Attribute):
            read.add(parent.attr)
        elif isinstance(parent, ast.Assign) and all(isinstance(t, ast.Name) for t in parent.targets):
            whole |= {t.id for t in parent.targets}
        else:
            raise ValueError(f"line {call.lineno}: load_params(...) used other than by section")
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in whole and isinstance(node.ctx, ast.Load):
            parent = parents[node]
            if not isinstance(parent, ast.Attribute):
                raise ValueError(f"line {node.lineno}: the whole params object `{node.id}` is passed on")
            read.add(parent.attr)
    return read


def leaf_keys(tree: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        keys += leaf_keys(value, path + ".") if isinstance(value, dict) and value else [path]
    return keys


def test_sections_read_sees_aliases_and_refuses_a_whole_params_passed_on():
    source = "p = load_params('params.yaml')\ntp = p.train\nm = load_params().parity.margin\n"
    assert sections_read(source) == {"train", "parity"}
    with pytest.raises(ValueError, match="passed on"):
        sections_read("p = load_params()\nrun(p.train, p)\n")
    with pytest.raises(ValueError, match="other than by section"):
        sections_read("run(load_params())\n")


def test_every_params_key_is_declared_by_each_stage_that_reads_it():
    params = YAML(typ="safe").load((REPO / "params.yaml").read_text())
    stages = dvc_stages()
    declared = {}
    for name, stage in stages.items():
        entries = stage.get("params", [])
        assert all(isinstance(e, str) for e in entries), (name, "params from another file")
        declared[name] = entries
        read = sections_read((REPO / "scripts" / f"{name}.py").read_text())
        assert read <= set(params), (name, sorted(read - set(params)))
        undeclared = read - {entry.split(".")[0] for entry in entries}
        assert not undeclared, f"stage {name} reads {sorted(undeclared)} but does not declare it"
    for key in leaf_keys(params):
        owners = [n for n, ents in declared.items() if any(key == e or key.startswith(e + ".") for e in ents)]
        assert owners, f"params.yaml key {key!r} is declared by no stage"


def test_dvcignore_skips_local_environments_and_nothing_the_pipeline_uses():
    # Real DVC answers: every file in git and every path a stage names stays visible (DVC always
    # hides .dvc/ itself), and the folders people create in a checkout are skipped at any depth.
    import subprocess
    import sys

    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True)
    named = [
        path if isinstance(path, str) else next(iter(path))  # an out with options is {path: {...}}
        for stage in dvc_stages().values()
        for kind in ("deps", "outs", "metrics")
        for path in stage.get(kind, [])
    ]
    visible = [p for p in tracked.stdout.split() + named if not p.startswith(".dvc/") and "${" not in p]
    local = [
        "venv/bin/python",
        ".venv-cpu/bin/python",
        "env/bin/python",
        ".tox/py311/x",
        ".nox/x",
        ".mypy_cache/x",
        "clients/node/node_modules/x",
        "clients/web/node_modules/x",
        "tools/plots/node_modules/x",
        "build/lib/x",
        "dist/x.whl",
        "onnxship.egg-info/PKG-INFO",
        "notebooks/.ipynb_checkpoints/x",
        "spark-warehouse/x",
        "metastore_db/x",
    ]
    out = subprocess.run(
        [sys.executable, "-m", "dvc", "check-ignore", "--stdin"],
        cwd=REPO,
        input="\n".join(visible + local),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.split()) == sorted(local)


def test_readme_links_every_doc_and_every_link_resolves():
    readme = (REPO / "README.md").read_text()
    linked = set(re.findall(r"\]\((docs/[\w.-]+\.md)\)", readme))
    present = {f"docs/{p.name}" for p in (REPO / "docs").glob("*.md")}
    assert linked == present
    for doc in present:
        for target in re.findall(r"\]\(([\w.-]+\.md)\)", (REPO / doc).read_text()):
            assert (REPO / "docs" / target).exists(), (doc, target)


def test_ci_installs_the_browser_the_web_tests_ask_for(tmp_path):
    """tests/test_web.py skips without Chromium and says how to install it; CI installs it that way."""
    from tools import web_page

    ci = (REPO / ".ci" / "run").read_text()
    assert "apt-get install -y chromium" in web_page.missing_browser(tmp_path / "no_chromium")
    assert "apt-get install -y chromium" in ci and "[ ! -x /usr/bin/chromium ]" in ci
    assert ci.index("apt-get install -y chromium") < ci.index("python -m pytest")
