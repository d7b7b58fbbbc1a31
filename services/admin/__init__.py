"""Auto-admin: storage-node liveness, leader election and partition repair."""
