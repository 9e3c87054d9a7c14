"""Shared plumbing of the PyTorch peers (bench/peer_*.py): arguments, thread setup, BLAS identification,
peak RSS and the one JSON line each peer prints. Works on torch 1.13 (Debian python3-torch) and 2.x.

The runner (bench/run.ts) decides the environment (OPENBLAS_NUM_THREADS, GLIBC_TUNABLES, ...) before the
interpreter starts, because OpenBLAS and glibc read it at load time; here we only set torch's own thread
count and report what the process ended up with.
"""
import argparse
import ctypes
import json
import os
import resource
import sys
import time

import torch

ENV_KEYS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE",
            "OPENBLAS_L2_SIZE", "GLIBC_TUNABLES")


def parse_args(description):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--spec", required=True, help="case spec as JSON (same object bench/cases.ts uses)")
    ap.add_argument("--steps", type=int, required=True, help="timed steps")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--attn", choices=("auto", "eager", "sdpa"), default="auto",
                    help="attention kernel: sdpa needs torch >= 2.0 (auto picks it when present)")
    a = ap.parse_args()
    a.spec = json.loads(a.spec)
    return a


def setup_threads(n):
    torch.set_num_threads(n)


def kib_to_mib(kib):
    return kib / 1024.0  # Linux ru_maxrss is in KiB


def rusage():
    return resource.getrusage(resource.RUSAGE_SELF)


def _openblas():
    """The OpenBLAS loaded into this process (via torch's libblas.so.3), or None."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "blas" in line and "/" in line}
    except OSError:
        return None
    for p in sorted(paths):
        try:
            lib = ctypes.CDLL(p)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            lib.openblas_get_config.restype = ctypes.c_char_p
            return {
                "library": p,
                "corename": lib.openblas_get_corename().decode(),
                "config": lib.openblas_get_config().decode().strip(),
                "threads": lib.openblas_get_num_threads(),
            }
        except (OSError, AttributeError):
            continue
    return None


def blas_info():
    openblas = _openblas()
    kind = "mkl" if "BLAS_INFO=mkl" in torch.__config__.show() else "openblas" if openblas else "other"
    return {"kind": kind, "openblas": openblas}


def thread_info():
    return {
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "env": {k: os.environ[k] for k in ENV_KEYS if k in os.environ},
    }


class Timer:
    """Wall-clock per step (perf_counter), plus minor page faults over the timed steps."""

    def __init__(self):
        self.ms = []
        self._t = 0.0
        self._flt0 = self._cpu0 = None

    def start(self):
        if self._flt0 is None:
            r = rusage()
            self._flt0, self._cpu0 = r.ru_minflt, r.ru_utime + r.ru_stime
        self._t = time.perf_counter()

    def stop(self):
        self.ms.append((time.perf_counter() - self._t) * 1e3)

    def summary(self):
        """Median ms/step (robust on a shared machine) with mean/min/max, as bench/cases.ts reports ours."""
        ms = sorted(self.ms)
        n = len(ms)
        r = rusage()
        faults = r.ru_minflt - self._flt0
        cpu_ms = (r.ru_utime + r.ru_stime - self._cpu0) * 1e3
        return {
            "ms_per_step": ms[n // 2] if n % 2 else (ms[n // 2 - 1] + ms[n // 2]) / 2,
            "ms_mean": sum(ms) / n,
            "ms_min": ms[0],
            "ms_max": ms[-1],
            "cpu_ms_per_step": cpu_ms / n,
            "minflt_per_step": faults / n,
        }


def summary_with_rate(summary, key, work_per_step):
    """Adds `key` = work_per_step / seconds-per-step (median step) to a Timer summary."""
    summary[key] = work_per_step / (summary["ms_per_step"] / 1e3)
    return summary


def emit(record):
    record.update({
        "side": "pytorch",
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "blas": blas_info(),
        "threads": thread_info(),
        "peak_rss_mb": kib_to_mib(rusage().ru_maxrss),
    })
    print(json.dumps(record), flush=True)
