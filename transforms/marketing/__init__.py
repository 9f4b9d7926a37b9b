"""The marketing profiles (policy §3.4 ¶5): usage profiles of subscribers who consented, under purpose-bound
tokens, in the `marketing` zone (docs/design.md §11)."""
