"""The set-up (`make setup`, run by `make run` and `make test`) leaves every module of the package
compiled, so a fresh interpreter (a command-line run, each conversion and render worker) reads the
compiled modules instead of compiling them again, also where PYTHONDONTWRITEBYTECODE is set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SPY = """
import json, sys
import importlib._bootstrap_external as external
compiled = []
real = external.SourceLoader.source_to_code
def source_to_code(self, data, path, *, _optimize=-1):
    compiled.append(str(path))
    return real(self, data, path, _optimize=_optimize)
external.SourceLoader.source_to_code = source_to_code
import packet.cli, packet.pipeline.build, packet.pipeline.submission, packet.workers.pool
import packet.intake.convert.worker, packet.mailings.layout, packet.workers.render
print(json.dumps(compiled))
"""


def test_setup_compiles_the_package_so_a_fresh_interpreter_compiles_none_of_it(tmp_path):
    # `-o`: the installed virtual environment is taken as it is (no reinstall inside a test). A broken
    # configuration of the person running it is not the set-up's business: the package's own
    # templates are compiled all the same.
    broken = tmp_path / "imr.toml"
    broken.write_text("[ocr\nlanguages = 5\n", encoding="utf-8")
    made = subprocess.run(["make", "-s", "-o", ".venv/.installed", "bytecode"], cwd=ROOT,
                          env={**os.environ, "IMR_CONFIG": str(broken)}, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    assert made.stdout == "" and made.stderr == "", "the set-up prints nothing when it succeeds"
    from packet.mailings.templates import COMPILED_DIR

    templates = list((ROOT / "templates").glob("*/*.j2"))
    assert len(list((COMPILED_DIR / "mailings").glob("*.cache"))) >= len(templates) > 20
    assert len(list((COMPILED_DIR / "board").glob("*.cache"))) >= 3
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))}
    spied = subprocess.run([sys.executable, "-c", SPY], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=120)
    assert spied.returncode == 0, spied.stderr
    ours = [path for path in json.loads(spied.stdout) if Path(path).is_relative_to(ROOT / "packet")]
    assert ours == [], f"compiled again in a fresh interpreter: {ours}"


def test_a_module_changed_after_the_set_up_is_compiled_afresh_not_read_from_its_old_copy(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    module = package / "answer.py"
    module.write_text("VALUE = 1\n")
    made = subprocess.run(["make", "-s", "-o", ".venv/.installed", "bytecode", f"COMPILED={package}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    assert list((package / "__pycache__").glob("answer.*.pyc")), "the set-up's own command compiled it"
    module.write_text("VALUE = 22\n")  # another size: seen as changed even within the same second
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(tmp_path)}
    read = subprocess.run([sys.executable, "-c", "import pkg.answer; print(pkg.answer.VALUE)"],
                          env=env, capture_output=True, text=True, timeout=60, check=True)
    assert read.stdout.strip() == "22", "a compiled copy is used only while its source is unchanged"


ORDERED_CONFTEST = '''
def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.path.name != "test_long.py")  # as tests/conftest.py: longest file first
'''


def test_make_test_hands_out_files_in_the_order_conftest_collects_them(tmp_path):
    """tests/conftest.py puts the longest files first; `make test`'s pytest-xdist options must start
    them in that order (pytest-xdist's own default starts the files with the most tests first)."""
    printed = subprocess.run(["make", "-s", "-n", "-o", "system-deps", "-o", ".venv/.installed", "-o", "bytecode",
                              "TEST_WORKERS=1", "test"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    command = printed.stdout.strip().split()
    arguments = command[command.index("pytest") + 1:]
    (tmp_path / "conftest.py").write_text(ORDERED_CONFTEST)
    (tmp_path / "test_long.py").write_text(
        "def test_one_long():\n    open('ran.txt', 'a').write('long\\n')\n")
    (tmp_path / "test_many.py").write_text("".join(
        f"def test_short_{n}():\n    open('ran.txt', 'a').write('short\\n')\n" for n in range(6)))
    ran = subprocess.run([sys.executable, "-m", "pytest", *arguments, "-p", "no:cacheprovider", "--rootdir", str(tmp_path)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert (tmp_path / "ran.txt").read_text().split() == ["long"] + ["short"] * 6
