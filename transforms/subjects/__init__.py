"""Data-subject rights (policy §6): find one subscriber in every zone from their tokens, and export it."""
