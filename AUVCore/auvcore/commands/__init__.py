"""Sub-commands of ``auv``: each module exposes ``register(subparsers)``."""
