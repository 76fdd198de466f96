"""Loaded first by pytest (`-p tests.development_env` in pyproject.toml), before Django reads
its settings: the test suite runs in development mode, as `make dev` does (DEBUG is off unless
a development command turns it on). The processes tests start inherit it; a test that wants
production settings sets DEBUG=false in the environment it gives a process."""

import os

os.environ["DEBUG"] = "true"
