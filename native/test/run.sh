#!/usr/bin/env bash
# Builds and runs kernel_check.cc (see there). Needs g++ and an x86-64 CPU with AVX2 + FMA.
set -euo pipefail
src="$(cd "$(dirname "$0")/../src" && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
f=(-O2 -std=gnu++17 -fPIC -I"$src" -Wno-psabi -ffp-contract=fast)
g++ "${f[@]}" -c "$src/isa_generic.cc" -o "$out/generic.o"
g++ "${f[@]}" -mavx2 -mfma -c "$src/isa_avx2.cc" -o "$out/avx2.o"
g++ "${f[@]}" -mavx2 -mfma -c "$src/isa_avx512.cc" -o "$out/avx512_on_avx2.o"  # AVX-512 shapes, AVX2 code
g++ "${f[@]}" "$(dirname "$0")/kernel_check.cc" "$src/gemm.cc" "$src/pool.cc" "$out"/*.o -o "$out/kernel_check" -lpthread
"$out/kernel_check"
