"""sipmote host tools: the relay that bridges SIP phones to AI voice agents, and the CLI."""

__version__ = "0.1.0"
