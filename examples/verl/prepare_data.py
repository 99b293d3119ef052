"""AceCode-87K -> verl parquet (data_source, prompt, ability, reward_model, extra_info).

    python examples/verl/prepare_data.py --out data/acecode_verl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--test-size", type=int, default=500)
    args = parser.parse_args()
    from datasets import load_dataset  # pip install datasets

    def to_verl(row: dict, index: int) -> dict:
        return {
            "data_source": "acecode",
            "prompt": [{"role": "user", "content": row["question"]}],
            "ability": "code",
            # ground_truth reaches compute_score as is: a JSON list of asserts
            "reward_model": {"style": "rule", "ground_truth": json.dumps(row["test_cases"])},
            # compute_score sends extra_info["question"] as the user turn for rm/hybrid modes
            "extra_info": {"index": index, "question": row["question"], "id": row["id"]},
        }

    rows = load_dataset("TIGER-Lab/AceCode-87K", split="train")
    rows = rows.map(to_verl, with_indices=True, remove_columns=rows.column_names)
    split = rows.train_test_split(test_size=args.test_size, seed=0)
    args.out.mkdir(parents=True, exist_ok=True)
    split["train"].to_parquet(str(args.out / "train.parquet"))
    split["test"].to_parquet(str(args.out / "test.parquet"))


if __name__ == "__main__":
    main()
