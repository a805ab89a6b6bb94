#!/bin/sh
# Which builds `make setup` installs: prints "KIND TAG" (cpu cpu | cuda12 cu126 | cuda12 cu129 |
# cuda13 default) and one line to stderr saying why and which compute capabilities that torch
# build has kernels for. The choice and the table of builds are src/alcg/hardware/torch_builds.py's; this
# script only reads the driver's CUDA version and the lowest compute capability from nvidia-smi.
#   GPU=auto (default) decides from them; GPU=cpu|cuda12|cuda13 forces the kind.
PY=${PY:-python3}
cuda=""
cap=""
if [ "${GPU:-auto}" != cpu ] && command -v nvidia-smi >/dev/null 2>&1; then
  if header=$(nvidia-smi 2>/dev/null); then
    cuda=$(printf '%s\n' "$header" | sed -n 's/.*CUDA Version: *\([0-9]*\)\.\([0-9]*\).*/\1/p' | head -n 1)
    cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | sort -n | head -n 1)
  fi
fi
exec "$PY" "$(dirname "$0")/../src/alcg/hardware/torch_builds.py" "${GPU:-auto}" "$cuda" "$cap"
