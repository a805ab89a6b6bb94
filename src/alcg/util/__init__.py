"""Utilities: errors, atomic file writes, logs, frame chunks, figure files (imports nothing else of alcg)."""
