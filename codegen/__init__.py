"""Plan -> C project emitter."""
