"""microtile compiler.passes."""
