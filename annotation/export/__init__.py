"""Gold labels, group-disjoint stratified splits and export files with a data card (see README.md)."""
