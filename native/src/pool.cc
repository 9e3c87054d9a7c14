#include "pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

namespace lmd {
namespace {

thread_local bool tl_in_task = false;

/** A pause hint for spin loops (lets the sibling hyperthread run, saves power). */
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/**
 * How long an idle worker, and a caller waiting for the last tasks, spin before blocking (µs;
 * LMDISTILL_SPIN_US, default 300, 0 = block at once). Waking a blocked thread costs 20–90 µs in a VM
 * (futex + an interrupt to a halted vCPU) — longer than many kernels of a training step take — while
 * kernels usually follow each other within microseconds. OpenBLAS and OpenMP runtimes spin likewise.
 */
int default_spin_us() {
  if (const char* env = std::getenv("LMDISTILL_SPIN_US")) {  // a whole number of µs; anything else: default
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && n >= 0) return n > 100000 ? 100000 : static_cast<int>(n);
  }
  return 300;
}

/** Spins until pred() or `us` microseconds have passed; returns pred(). */
template <class Pred>
bool spin_until(Pred pred, int us) {
  if (pred()) return true;
  if (us <= 0) return false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (pred()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() >= deadline) return pred();
  }
}

class Pool {
 public:
  explicit Pool(int threads) : spin_us_(default_spin_us()) { start(threads); }
  ~Pool() { stop(); }

  int threads() const { return static_cast<int>(workers_.size()) + 1; }
  int spin_us() const { return spin_us_; }

  void resize(int threads) {
    std::lock_guard<std::mutex> submit(submit_mu_);
    stop();
    start(threads);
  }

  void run(long ntasks, TaskFn fn, void* ctx) {
    if (ntasks <= 0) return;
    if (ntasks == 1 || workers_.empty() || tl_in_task) return inline_run(ntasks, fn, ctx);
    std::unique_lock<std::mutex> submit(submit_mu_, std::try_to_lock);
    if (!submit.owns_lock()) return inline_run(ntasks, fn, ctx);  // another JS thread is using the pool
    // A worker that joined the previous job may still be leaving it (its tasks are all done, but it
    // holds the old job's fields and next_ counter): wait it out before reusing them.
    spin_until([&] { return active_.load(std::memory_order_acquire) == 0; }, spin_us_);
    bool wake;
    {
      std::unique_lock<std::mutex> lk(mu_);
      done_cv_.wait(lk, [&] { return active_.load(std::memory_order_acquire) == 0; });
      fn_ = fn;
      ctx_ = ctx;
      ntasks_ = ntasks;
      next_.store(0, std::memory_order_relaxed);
      pending_.store(ntasks, std::memory_order_relaxed);
      gen_.store(gen_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
      wake = sleepers_ > 0;
    }
    if (wake) work_cv_.notify_all();  // spinning workers see gen_ change without it
    tl_in_task = true;
    drain(fn, ctx, ntasks);
    tl_in_task = false;
    // Every task has been claimed; the last ones may still run on workers. Once pending_ is 0 no
    // worker touches fn/ctx again (a late fetch_add on next_ finds it exhausted), so ctx may go.
    if (spin_until([&] { return pending_.load(std::memory_order_acquire) == 0; }, spin_us_)) return;
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [&] { return pending_.load(std::memory_order_acquire) == 0; });
  }

 private:
  static void inline_run(long ntasks, TaskFn fn, void* ctx) {
    const bool prev = tl_in_task;
    tl_in_task = true;
    for (long t = 0; t < ntasks; ++t) fn(ctx, t);
    tl_in_task = prev;
  }

  void drain(TaskFn fn, void* ctx, long ntasks) {
    for (;;) {
      const long t = next_.fetch_add(1, std::memory_order_relaxed);
      if (t >= ntasks) break;
      fn(ctx, t);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  void worker() {
    tl_in_task = true;
    unsigned long seen = gen_.load(std::memory_order_acquire);
    for (;;) {
      spin_until([&] { return gen_.load(std::memory_order_acquire) != seen || stop_flag_.load(std::memory_order_relaxed); },
                 spin_us_);
      std::unique_lock<std::mutex> lk(mu_);
      if (gen_.load(std::memory_order_relaxed) == seen && !stop_) {
        ++sleepers_;
        work_cv_.wait(lk, [&] { return stop_ || gen_.load(std::memory_order_relaxed) != seen; });
        --sleepers_;
      }
      if (stop_) return;
      seen = gen_.load(std::memory_order_relaxed);
      active_.fetch_add(1, std::memory_order_acq_rel);
      TaskFn fn = fn_;
      void* ctx = ctx_;
      const long n = ntasks_;
      lk.unlock();
      drain(fn, ctx, n);
      if (active_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        // The caller may have stopped spinning and blocked on done_cv_, for pending_ == 0 (this job)
        // or active_ == 0 (the next one): notify under the lock so the wake-up cannot be lost.
        std::lock_guard<std::mutex> g(mu_);
        done_cv_.notify_all();
      }
    }
  }

  void start(int threads) {
    stop_ = false;
    stop_flag_.store(false);
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker(); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
      stop_flag_.store(true);
    }
    work_cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  const int spin_us_;
  std::mutex submit_mu_;  // one job at a time; held by the submitting thread for the job's duration
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::vector<std::thread> workers_;
  bool stop_ = false;
  std::atomic<bool> stop_flag_{false};
  std::atomic<unsigned long> gen_{0};
  std::atomic<int> active_{0};
  int sleepers_ = 0;  // workers blocked on work_cv_ (under mu_)
  TaskFn fn_ = nullptr;
  void* ctx_ = nullptr;
  long ntasks_ = 0;
  std::atomic<long> next_{0};
  std::atomic<long> pending_{0};
};

int default_threads() {
  if (const char* env = std::getenv("LMDISTILL_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n > 256 ? 256 : n;
  }
  const unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}

// Leaked on purpose: joining threads from a static destructor at process exit can deadlock when
// the process exits from inside a task (e.g. an uncaught exception in a worker_thread).
Pool& pool() {
  static Pool* p = new Pool(default_threads());
  return *p;
}

constexpr int kScratchSlots = 13;  // 0/1 GEMM packing, 2–11 attention tiles and rows, 12 a shared packed B (gemm.cc)

struct Scratch {
  float* ptr[kScratchSlots] = {};
  size_t cap[kScratchSlots] = {};
  ~Scratch() {
    for (float* p : ptr) std::free(p);
  }
};
thread_local Scratch tl_scratch;

}  // namespace

int pool_threads() { return pool().threads(); }

int pool_spin_us() { return pool().spin_us(); }

void pool_resize(int n) { pool().resize(n > 0 ? (n > 256 ? 256 : n) : default_threads()); }

void pool_run(long ntasks, TaskFn fn, void* ctx) { pool().run(ntasks, fn, ctx); }

float* scratch(int slot, size_t floats) {
  Scratch& s = tl_scratch;
  if (slot < 0 || slot >= kScratchSlots) throw std::bad_alloc();
  if (s.cap[slot] < floats) {
    std::free(s.ptr[slot]);
    const size_t bytes = ((floats * sizeof(float) + 63) / 64) * 64;
    s.ptr[slot] = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (s.ptr[slot] == nullptr) throw std::bad_alloc();
    s.cap[slot] = floats;
  }
  return s.ptr[slot];
}

}  // namespace lmd
