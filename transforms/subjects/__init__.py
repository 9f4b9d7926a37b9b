"""Data subjects' rights (policy §6; docs/design.md §12): the register of requests, each with the last day to
answer it; finding one subscriber in every zone from their tokens (`find`) and their copy (`export`). The subject is
kept only as its keyed tokens under every key held, never as its value."""
