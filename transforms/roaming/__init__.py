"""Roaming fair use (policy §3.2 ¶4; docs/design.md §5): monthly per-subscriber presence and consumption
(`months`), assessed over the observation window (`window`), in the roaming zone (`schema`)."""
