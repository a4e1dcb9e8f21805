"""stack-tui: operate a platform's dev and prod Compose projects side by side."""

import logging

__version__ = "0.1.0"

# Records go nowhere until core.diagnostics.log_to() names the file: never to stderr.
logging.getLogger(__name__).addHandler(logging.NullHandler())
