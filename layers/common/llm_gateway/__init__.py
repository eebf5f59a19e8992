"""LLM Gateway shared package: one layer used by every function."""
