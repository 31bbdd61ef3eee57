"""The matcher: the rules, gallery and linker (pure, no Redis), and the process that feeds them from Redis."""
