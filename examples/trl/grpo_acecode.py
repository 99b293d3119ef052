"""GRPO with TRL on AceCode-87K, rewarded by a codereward server (pass rate of the tests).

    CODEREWARD_URL=http://RM_HOST:8000 python examples/trl/grpo_acecode.py \
        --model Qwen/Qwen2.5-Coder-1.5B-Instruct --output-dir out/grpo-acecode

The reward function is one line: `make_reward_func(url, mode="tests")`. TRL passes the
dataset's other columns as keyword arguments, so the `test_cases` column (a list of asserts,
as in AceCode-87K) reaches the server with each completion. Use `mode="hybrid"` to add the
reward model's score, or several reward functions with `reward_weights`.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from codereward_client.trl import make_reward_func


def acecode_dataset(path: str | None, limit: int | None) -> Any:
    """AceCode-87K (or a local jsonl with question/test_cases) as conversational prompts."""
    from datasets import load_dataset

    if path:
        rows = load_dataset("json", data_files=path, split="train")
    else:
        rows = load_dataset("TIGER-Lab/AceCode-87K", split="train")
    if limit:
        rows = rows.select(range(min(limit, len(rows))))
    keep = {"test_cases"}
    return rows.map(lambda r: {"prompt": [{"role": "user", "content": r["question"]}]},
                    remove_columns=[c for c in rows.column_names if c not in keep])


def build_trainer(model: Any, dataset: Any, output_dir: str, *, url: str | None = None,
                  mode: str = "tests", processing_class: Any = None,
                  **config: Any) -> Any:
    """A GRPOTrainer whose only reward is codereward's (config: GRPOConfig fields)."""
    from trl import GRPOConfig, GRPOTrainer

    reward = make_reward_func(url or os.environ.get("CODEREWARD_URL"), mode=mode,
                              tests_column="test_cases")
    defaults: dict[str, Any] = {"num_generations": 8, "max_completion_length": 1024,
                                "per_device_train_batch_size": 8, "learning_rate": 1e-6,
                                "logging_steps": 1, "report_to": "none"}
    args = GRPOConfig(output_dir=output_dir, **{**defaults, **config})
    return GRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=dataset,
                       processing_class=processing_class)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="Qwen/Qwen2.5-Coder-1.5B-Instruct")
    parser.add_argument("--data", default=None, help="local jsonl; default AceCode-87K")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--mode", default="tests", choices=["tests", "rm", "hybrid"])
    parser.add_argument("--output-dir", default="out/grpo-acecode")
    parser.add_argument("--max-steps", type=int, default=-1)
    args = parser.parse_args()
    trainer = build_trainer(args.model, acecode_dataset(args.data, args.limit), args.output_dir,
                            mode=args.mode, max_steps=args.max_steps)
    trainer.train()


if __name__ == "__main__":
    main()
