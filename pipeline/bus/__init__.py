"""The bus: what camera processes hand to the matcher through Redis (records, publisher, batched writes)."""
