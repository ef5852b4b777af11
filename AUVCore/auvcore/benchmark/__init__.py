"""Benchmarks a user can run on their own cohort: ``auv benchmark-curation`` (:mod:`.curation`)."""
