"""Event bus adapters: in-process for one node (`memory`), Redis pub/sub between the nodes of a
cluster (`redis`), and the state nodes share through Redis (`shared`)."""
