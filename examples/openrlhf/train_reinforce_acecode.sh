#!/usr/bin/env bash
# REINFORCE++ (baseline) on AceCode-87K with codereward as the remote reward (OpenRLHF >= 0.11).
# Older OpenRLHF releases spell the flags --remote_rm_url, --label_key, --input_key,
# --apply_chat_template, --advantage_estimator, --n_samples_per_prompt.
#
# 1. serve the reward:   CODEREWARD_HOST=0.0.0.0 CODEREWARD_MODELS=rm=/ckpt/acecode-rm python -m service
#    (or several servers, listed comma-separated below: OpenRLHF uses them round-robin)
# 2. data:               python examples/openrlhf/prepare_data.py --out data/acecode.jsonl
# 3. train:              bash examples/openrlhf/train_reinforce_acecode.sh
set -euo pipefail
RM_URL=${RM_URL:-http://127.0.0.1:8000/get_reward?mode=tests}   # mode: tests | rm | hybrid

ray job submit --address="http://127.0.0.1:8265" --runtime-env-json='{"working_dir": "."}' -- \
  python3 -m openrlhf.cli.train_ppo_ray \
  --actor.model_name_or_path Qwen/Qwen2.5-Coder-7B \
  --reward.remote_url "${RM_URL}" \
  --data.prompt_dataset data/acecode.jsonl \
  --data.input_key input \
  --data.label_key tests \
  --data.apply_chat_template \
  --algo.advantage.estimator reinforce_baseline \
  --rollout.n_samples_per_prompt 8 \
  --rollout.max_new_tokens 1024 \
  --data.max_len 2048 \
  --rollout.batch_size 128 \
  --train.batch_size 128 \
  --actor.adam.lr 5e-7 \
  --algo.kl.init_coef 0.0 \
  --vllm.num_engines 2 \
  --ckpt.path ./ckpt/acecode-reinforce
# Each rollout is posted alone as {"query": [text], "prompts": [prompt], "labels": [tests]};
# the server answers {"rewards", "scores", "extra_logs"}: scores (the pass rate) drive
# --algo.dynamic_filtering_enable, and extra_logs (pass_rate, all_pass, rm_score...) are logged.
