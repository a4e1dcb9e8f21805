"""The UI-free core: environments, compose runner, engine access, backups, locks, audit.

Nothing under this package may import Textual (tests/unit/test_layers.py).
"""
