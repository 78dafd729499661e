import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import make_config  # noqa: E402
from packet import log as service_log  # noqa: E402
from packet.workers import pool  # noqa: E402


def pytest_collection_modifyitems(config, items):
    """Files that hold slow tests (kill, corpus, fuzz, load) are collected first: `make test` runs
    two pytest-xdist workers with --dist loadfile, which hand out whole files in collection order,
    so a long file started last would leave one core idle at the end. Order inside a file is kept."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


@pytest.fixture(autouse=True)
def _service_log_as_the_service_writes_it():
    """Each test starts with the log's defaults (JSON, every level), whatever an earlier test's
    command line chose (`--quiet`, `--log-format text` set them for the process)."""
    service_log.configure(fmt="json", level="debug")
    yield


@pytest.fixture(autouse=True)
def _no_pooled_conversion_workers():
    """Each test starts without idle conversion workers kept by an earlier one (tests count the
    workers a run starts, and change PATH for fake converters)."""
    pool.shutdown()
    yield


@pytest.fixture
def config(tmp_path):
    return make_config(tmp_path)


@pytest.fixture
def corpus_dir():
    path = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
    if not path.is_dir():
        pytest.skip("../shared/corpus is not beside the project")
    return path
