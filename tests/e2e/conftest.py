"""Shared fixtures for the end-to-end tests: where the build and the shared data are."""
import os
import pathlib

import pytest

SOURCE_DIR = pathlib.Path(os.environ.get("MR_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
BUILD_DIR = pathlib.Path(os.environ.get("MR_BUILD_DIR", SOURCE_DIR / "build"))
SHARED_DIR = pathlib.Path(os.environ.get("MR_SHARED_DIR", SOURCE_DIR.parent / "shared"))


@pytest.fixture(scope="session")
def build_dir():
    return BUILD_DIR


@pytest.fixture(scope="session")
def bin_dir():
    return BUILD_DIR / "bin"


@pytest.fixture(scope="session")
def shared_dir():
    return SHARED_DIR
