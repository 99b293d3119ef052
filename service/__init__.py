"""codereward HTTP service: reward scores, reranking and test execution."""
