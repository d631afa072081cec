"""The public-goods game with punishment (Fehr & Gächter 2000, 2002): a human baseline."""
