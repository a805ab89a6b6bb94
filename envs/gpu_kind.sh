#!/bin/sh
# Which builds `make setup` installs: prints cpu, cuda12 or cuda13 (the reason goes to stderr).
#   GPU=auto (default): cuda13 when nvidia-smi shows a driver for CUDA >= 13 and a card of compute
#   capability >= 7.5 (CUDA 13 builds have no kernels for older cards), cuda12 for a CUDA 12
#   driver or an older card, cpu without a working NVIDIA driver. GPU=cpu|cuda12|cuda13 forces it.
kind=${GPU:-auto}
case $kind in
  cpu|cuda12|cuda13) echo "GPU=$kind given" >&2; echo "$kind"; exit 0 ;;
  auto) ;;
  *) echo "make setup: GPU=$kind: expected auto, cpu, cuda12 or cuda13" >&2; exit 2 ;;
esac
if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "no nvidia-smi: no NVIDIA driver here, CPU builds" >&2; echo cpu; exit 0
fi
header=$(nvidia-smi 2>/dev/null) || { echo "nvidia-smi fails (no working driver): CPU builds" >&2; echo cpu; exit 0; }
cuda=$(printf '%s\n' "$header" | sed -n 's/.*CUDA Version: *\([0-9]*\)\.\([0-9]*\).*/\1/p' | head -n 1)
cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | sort -n | head -n 1)
cap_x10=$(printf '%s\n' "${cap:-0}" | awk '{printf "%d", $1 * 10 + 0.5}')
if [ -z "$cuda" ] || [ "$cuda" -lt 12 ]; then
  echo "driver supports CUDA ${cuda:-?} (< 12): too old for these builds, CPU builds" >&2; echo cpu
elif [ "$cuda" -ge 13 ] && [ "$cap_x10" -ge 75 ]; then
  echo "driver for CUDA $cuda, compute capability $cap: CUDA 13 builds" >&2; echo cuda13
else
  echo "driver for CUDA $cuda, compute capability ${cap:-?}: CUDA 12 builds" >&2; echo cuda12
fi
