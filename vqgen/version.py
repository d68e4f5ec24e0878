"""The toolkit's version, in a module of its own so that the exporters read it without importing `vqgen`'s
`__init__` back (which imports them lazily)."""

__version__ = "0.1.0"
