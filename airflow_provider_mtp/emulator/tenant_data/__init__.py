"""Value tables of the synthetic tenant (pure data, no code that uses them)."""
