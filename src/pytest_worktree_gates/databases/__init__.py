"""Per-worktree database servers: port leases, backends (docker, local, external), fixtures."""
