"""Task distribution: who annotates which item next, reservations, submit/skip/flag (see README.md)."""
