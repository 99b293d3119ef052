"""Stage 2: candidate programs per question (LLM samples, AST mutations)."""
