"""Shared fixtures for the end-to-end tests: where the build and the test data are."""
import os
import pathlib

import pytest

SOURCE_DIR = pathlib.Path(os.environ.get("MR_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
BUILD_DIR = pathlib.Path(os.environ.get("MR_BUILD_DIR", SOURCE_DIR / "build"))
# The project's test vectors (tests/data; see tests/data/attestation/PROVENANCE.md).
TESTDATA_DIR = pathlib.Path(os.environ.get("MR_TESTDATA_DIR", SOURCE_DIR / "tests" / "data"))


@pytest.fixture(scope="session")
def build_dir():
    return BUILD_DIR


@pytest.fixture(scope="session")
def bin_dir():
    return BUILD_DIR / "bin"


@pytest.fixture(scope="session")
def testdata_dir():
    return TESTDATA_DIR
