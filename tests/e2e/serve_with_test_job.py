"""`enclave serve` with one more job kind, for the shutdown test (the test kind lives in the
tests, not in the product):

    python -m tests.e2e.serve_with_test_job serve --port 0 --data-dir DIR [...]

The server's default registry also holds `test.effect` (tests/services/jobs_worker.py: a job
that hangs while a file exists); everything else is the real `enclave` command line, with its
signal handling and its shutdown order.
"""

from __future__ import annotations

import sys

from enclave.cli.main import main
from enclave.config import Config
from enclave.services import jobs, runtime
from tests.services.jobs_worker import EFFECT

_product_registry = runtime.default_registry


def _with_test_kind(config: Config) -> jobs.Registry:
    registry = _product_registry(config)
    registry.add(EFFECT)
    return registry


if __name__ == "__main__":
    runtime.default_registry = _with_test_kind
    sys.exit(main(sys.argv[1:]))
