"""PyTorch peer of the gemm cases: torch.matmul(a, b, out=c) on preallocated fp32 operands, the same call
pattern as our side (one backend GEMM into a preallocated C per step). Prints one JSON line."""
import torch

import peer_common as pc


def main():
    a = pc.parse_args("PyTorch peer: fp32 GEMM C[m,n] = A[m,k] B[k,n]")
    pc.setup_threads(a.threads)
    rss_start = pc.kib_to_mib(pc.rusage().ru_maxrss)
    s = a.spec
    m, n, k = s["m"], s["n"], s["k"]
    gen = torch.Generator().manual_seed(s["seed"])
    A = torch.randn(m, k, generator=gen)
    B = torch.randn(k, n, generator=gen)
    C = torch.empty(m, n)
    timer = pc.Timer()
    for i in range(a.warmup + a.steps):
        if i >= a.warmup:
            timer.start()
        torch.matmul(A, B, out=C)
        if i >= a.warmup:
            timer.stop()
    t = pc.summary_with_rate(timer.summary(), "gflops", 2.0 * m * n * k / 1e9)
    pc.emit({"case": s["name"], "kind": "gemm", **t, "steps": a.steps, "warmup": a.warmup, "rss_start_mb": rss_start})


if __name__ == "__main__":
    main()
