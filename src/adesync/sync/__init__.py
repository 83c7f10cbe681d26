"""Device sync: the fetch/sync cursor state machine, the default-profile assigner, the scheduler."""
