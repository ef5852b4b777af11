"""pytest: the modules that subclass nnU-Net's trainer import ``nnunetv2``; without the ``nnunet`` extra their
doctests are not collected (the tests that need the extra skip themselves)."""

import importlib.util

collect_ignore = [] if importlib.util.find_spec("nnunetv2") else ["trainers.py", "losses.py", "external"]
