import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from corpuskit import CORPUS, corpus_sources  # noqa: E402
from helpers import make_config  # noqa: E402
from packet import log as service_log  # noqa: E402
from packet.workers import pool  # noqa: E402


TESTS = Path(__file__).resolve().parent
DURATIONS = TESTS / "durations.json"  # seconds per file, measured (scripts/test_durations.py)


def pytest_collection_modifyitems(config, items):
    """Files are collected longest first: `make test` runs pytest-xdist processes with --dist
    loadfile --no-loadscope-reorder, which hand out whole files in collection order, so a long file
    started last would leave the other processes idle at the end. The measured seconds per file
    (tests/durations.json) order them; a file not measured yet comes first if it holds tests marked
    slow (kill, corpus, fuzz, load), else after the measured ones. Order inside a file is kept."""
    try:
        seconds = json.loads(DURATIONS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        seconds = {}
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    longest = max(seconds.values(), default=0.0)

    def weight(item) -> float:
        try:
            name = item.path.relative_to(TESTS.parent).as_posix()
        except ValueError:
            return 0.0
        if name in seconds:
            return seconds[name]
        return longest + 1 if item.path in slow_files else 0.0

    items.sort(key=lambda item: -weight(item))


@pytest.fixture(autouse=True)
def _service_log_as_the_service_writes_it():
    """Each test starts with the log's defaults (JSON, every level), whatever an earlier test's
    command line chose (`--quiet`, `--log-format text` set them for the process)."""
    service_log.configure(fmt="json", level="debug")
    yield


# Test modules that handle the worker pool themselves (count the workers a run starts, prestart or
# stop them, patch the pool's functions): each of their tests starts without idle workers. Such a
# module holds one of these modules, or one of the functions that start, count or stop workers; a
# module that only converts files (`convert`, `convert_many`) or reads a memory figure (`status_mib`)
# uses the pool as a build does, and keeps its idle workers from one test to the next.
POOL_MODULES = frozenset({"packet.workers.pool", "packet.workers.render", "packet.intake.convert.batch"})
POOL_HANDLES = frozenset({"Worker", "take", "give_back", "prestart", "shutdown", "shutdown_pool", "idle_pids",
                          "run_jobs"})


def _handles_the_pool(module) -> bool:
    return any(getattr(value, "__name__", None) in POOL_MODULES
               or (getattr(value, "__module__", None) in POOL_MODULES and getattr(value, "__name__", None) in POOL_HANDLES)
               for value in vars(module).values())


@pytest.fixture(autouse=True, scope="module")
def _module_starts_and_ends_without_pooled_workers():
    """Idle workers never pass from one test file to the next."""
    pool.shutdown()
    yield
    pool.shutdown()


@pytest.fixture(autouse=True)
def _no_pooled_conversion_workers(request):
    """In a file that handles the pool, each test starts without idle workers kept by an earlier
    one (those tests count the workers a run starts). Elsewhere the idle conversion and render
    workers (one per role) stay for the next test of the file, as they stay for the service's next
    build: starting them is a fresh interpreter each. A worker started under another environment
    (a changed PATH, a fake soffice) is never reused (packet.workers.pool)."""
    if _handles_the_pool(request.module):
        pool.shutdown()
    yield


@pytest.fixture
def config(tmp_path):
    return make_config(tmp_path)


@pytest.fixture
def corpus_dir():
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is not beside the project")
    return CORPUS


@pytest.fixture(scope="session")
def corpus_conversion(tmp_path_factory):
    """The whole corpus converted once in a test run, by the conversion workers, into a cache the
    corpus tests copy (tests/intake/test_corpus.py checks every outcome; the builds of
    tests/pipeline/test_corpus_build.py then take the files from the cache, as the service takes an
    unchanged file). Under pytest-xdist the first process to ask converts while the other waits on a
    lock. Returns the configuration of that conversion (its cache and scratch folders)."""
    import fcntl

    from packet.intake.convert.batch import convert_many

    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is not beside the project")
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "corpus-conversion"
    shared.mkdir(exist_ok=True)
    config = make_config(shared)
    with open(shared / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "done").exists():
            convert_many(corpus_sources(), config)
            (shared / "done").touch()
    return config

