"""The `enclave` command line: a client of the same services as the API."""
