"""Active learning: embeddings stored once, a head retrained as labels arrive, priorities, suspected label errors."""
