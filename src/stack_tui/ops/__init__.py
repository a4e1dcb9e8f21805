"""Operations over the core, each a stream of typed events (ops/events.py).

The CLI prints the events; the TUI renders them. No Textual here either.
"""
