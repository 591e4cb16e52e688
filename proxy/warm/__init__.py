"""Cache warmup: requirements and lock files -> resolved files per target -> fetched through shadowpi."""
