"""Fixtures of the pdf room's tests (helpers live in tests/pdfkit.py)."""

from __future__ import annotations

import pytest
from pdfkit import make_documents

from packet.model.models import Document


@pytest.fixture
def documents(tmp_path) -> list[Document]:
    return make_documents(tmp_path)
