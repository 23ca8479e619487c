"""microtile compiler.frontend."""
