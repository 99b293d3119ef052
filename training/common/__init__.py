"""Plumbing every stage shares: JSONL records, config overrides, the LLM client."""
