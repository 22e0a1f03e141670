"""Budgets against the module's embedded chDB storage (tests/conftest.py), emptied for each test."""

from __future__ import annotations

import pytest

from featurecost.collector.storage.client import Storage
from testsupport.budgets import truncate


@pytest.fixture
def storage(chdb_storage: Storage) -> Storage:
    truncate(chdb_storage)
    return chdb_storage
