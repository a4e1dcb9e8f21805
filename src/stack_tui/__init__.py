"""stack-tui: operate a platform's dev and prod Compose projects side by side."""

__version__ = "0.1.0"
