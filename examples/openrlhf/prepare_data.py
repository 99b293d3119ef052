"""AceCode-87K -> OpenRLHF prompt jsonl: {"input": [user message], "tests": [asserts...]}.

    python examples/openrlhf/prepare_data.py --out data/acecode_openrlhf.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    from datasets import load_dataset  # pip install datasets

    rows = load_dataset("TIGER-Lab/AceCode-87K", split="train")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w") as f:
        for i, row in enumerate(rows):
            if args.limit is not None and i >= args.limit:
                break
            # --data.apply_chat_template renders this with the policy's template; the server
            # recovers the turns from the decoded text and re-renders them for the reward model
            record = {"input": [{"role": "user", "content": row["question"]}],
                      "tests": row["test_cases"]}
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
