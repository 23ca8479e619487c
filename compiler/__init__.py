"""microtile compiler: import -> IR -> passes -> reference -> schedule -> codegen."""

__version__ = "0.1.0"
