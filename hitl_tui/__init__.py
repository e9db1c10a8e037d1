"""hitl-tui: a human-in-the-loop control plane for AI agents."""

__version__ = "0.1.0"
