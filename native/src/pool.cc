#include "pool.h"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

namespace lmd {
namespace {

thread_local bool tl_in_task = false;

class Pool {
 public:
  explicit Pool(int threads) { start(threads); }
  ~Pool() { stop(); }

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

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
    {
      std::unique_lock<std::mutex> lk(mu_);
      // A worker that woke late for the previous job may still hold its fields: wait it out.
      done_cv_.wait(lk, [&] { return active_ == 0; });
      fn_ = fn;
      ctx_ = ctx;
      ntasks_ = ntasks;
      next_.store(0, std::memory_order_relaxed);
      pending_.store(ntasks, std::memory_order_relaxed);
      ++gen_;
    }
    work_cv_.notify_all();
    tl_in_task = true;
    drain(fn, ctx, ntasks);
    tl_in_task = false;
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [&] { return pending_.load(std::memory_order_acquire) == 0 && active_ == 0; });
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
    unsigned long seen = 0;
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
      work_cv_.wait(lk, [&] { return stop_ || gen_ != seen; });
      if (stop_) return;
      seen = gen_;
      ++active_;
      TaskFn fn = fn_;
      void* ctx = ctx_;
      const long n = ntasks_;
      lk.unlock();
      drain(fn, ctx, n);
      lk.lock();
      --active_;
      if (active_ == 0) done_cv_.notify_all();
    }
  }

  void start(int threads) {
    stop_ = false;
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker(); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  std::mutex submit_mu_;  // one job at a time; held by the submitting thread for the job's duration
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::vector<std::thread> workers_;
  bool stop_ = false;
  unsigned long gen_ = 0;
  int active_ = 0;
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
