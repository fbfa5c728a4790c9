"""A test-only app whose script never finishes: it waits in ``planted_hang`` for an event nobody sets.

``test_e2e_diagnostics.py`` serves it to prove that a hung server explains itself in the artifacts.
"""

import threading

from explorer.app import ui

ui.enable_stack_dumps()


def planted_hang() -> None:
    """Block the script run forever, as a deadlock would."""
    threading.Event().wait()


planted_hang()
