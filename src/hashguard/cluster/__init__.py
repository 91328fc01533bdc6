"""Ray adapters (the optional ``hashguard[ray]`` extra): the scan's Ray engine, the sharded
index's shard actors and Ray Serve replicas of the service. Nothing below this floor imports
Ray; the CLI imports these modules only when asked for Ray."""
