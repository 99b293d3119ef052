#!/usr/bin/env bash
# GRPO on AceCode-87K in verl, rewarded by a codereward server.
#
# 1. serve the reward:  CODEREWARD_HOST=0.0.0.0 python -m service   (tests mode needs no GPU)
# 2. data:              python examples/verl/prepare_data.py --out data/acecode_verl
# 3. train:             CODEREWARD_URL=http://RM_HOST:8000 bash examples/verl/run_grpo_acecode.sh
#
# compute_score(data_source, solution_str, ground_truth, extra_info) posts the response to
# /get_reward and returns {"score", "rm_score", "pass_rate", "all_pass", "error"}; the extra
# keys show up in verl's reward_extra_info. Batched instead (one call per batch, sent as
# concurrent chunks): reward_model.reward_manager=batch custom_reward_function.name=compute_score_batch
set -euo pipefail
export CODEREWARD_URL=${CODEREWARD_URL:-http://127.0.0.1:8000}
REWARD_PY=$(python -c 'import codereward_client.verl as m; print(m.__file__)')

python3 -m verl.trainer.main_ppo \
  algorithm.adv_estimator=grpo \
  data.train_files=data/acecode_verl/train.parquet \
  data.val_files=data/acecode_verl/test.parquet \
  data.train_batch_size=128 \
  data.max_prompt_length=1024 \
  data.max_response_length=1024 \
  actor_rollout_ref.model.path=Qwen/Qwen2.5-Coder-7B-Instruct \
  actor_rollout_ref.actor.optim.lr=1e-6 \
  actor_rollout_ref.actor.ppo_mini_batch_size=64 \
  actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4 \
  actor_rollout_ref.rollout.name=vllm \
  actor_rollout_ref.rollout.n=8 \
  actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8 \
  actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=8 \
  custom_reward_function.path="${REWARD_PY}" \
  custom_reward_function.name=compute_score \
  +custom_reward_function.reward_kwargs.mode=tests \
  +custom_reward_function.reward_kwargs.fallback_score=0.0 \
  trainer.n_gpus_per_node=8 \
  trainer.nnodes=1 \
  trainer.total_epochs=1 \
  trainer.project_name=codereward \
  trainer.experiment_name=acecode-grpo
# fallback_score: a sample whose reward call fails after the client's retries scores 0.0
# (with error=1.0 logged) instead of stopping the run; drop it to fail loudly.
