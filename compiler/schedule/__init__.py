"""microtile compiler.schedule."""
