"""Redis between the nodes of a cluster: the only package that imports `redis`.

`link` holds `RedisLink`, one node's connection (commands and Lua scripts for the shared state
of `enclave.bus.shared`, and whether Redis counts as reachable); `bus` holds `RedisBus`, which
carries signals between nodes over Redis pub/sub with the interface of the in-process bus.
"""
