import sys

from enclave.cli.main import main

sys.exit(main())
