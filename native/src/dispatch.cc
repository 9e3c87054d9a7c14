#include "dispatch.h"

#include <atomic>
#include <cstdlib>

namespace lmd {
namespace {

struct Entry {
  const char* name;
  const KernelTable* table;
  bool (*supported)();
};

#if defined(__x86_64__)
bool has_avx512() {
  __builtin_cpu_init();
  // __builtin_cpu_supports also checks that the OS saves the wider register state (XCR0).
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("fma");
}
bool has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif
bool always() { return true; }

const Entry kEntries[] = {
#if defined(__x86_64__)
    {"avx512", &kTableAvx512, has_avx512},
    {"avx2", &kTableAvx2, has_avx2},
#endif
    {"scalar", &kTableGeneric, always},
};

const KernelTable* pick_default() {
  if (const char* env = std::getenv("LMDISTILL_ISA")) {
    for (const Entry& e : kEntries)
      if (std::string(env) == e.name && e.supported()) return e.table;
  }
  for (const Entry& e : kEntries)
    if (e.supported()) return e.table;
  return &kTableGeneric;
}

std::atomic<const KernelTable*> g_current{nullptr};

}  // namespace

const KernelTable& kernels() {
  const KernelTable* t = g_current.load(std::memory_order_acquire);
  if (t == nullptr) {
    t = pick_default();
    g_current.store(t, std::memory_order_release);
  }
  return *t;
}

bool set_isa(const std::string& name) {
  for (const Entry& e : kEntries) {
    if (name == e.name && e.supported()) {
      g_current.store(e.table, std::memory_order_release);
      return true;
    }
  }
  return false;
}

std::vector<std::string> supported_isas() {
  std::vector<std::string> out;
  for (const Entry& e : kEntries)
    if (e.supported()) out.emplace_back(e.name);
  return out;
}

}  // namespace lmd
