// Runtime instruction-set dispatch: which KernelTable the addon uses.
#pragma once
#include <string>
#include <vector>

#include "kernels.h"

namespace lmd {

/** The table in use: the best one this CPU supports, or LMDISTILL_ISA's choice when set. */
const KernelTable& kernels();
/** Switches to the named table ("avx512" | "avx2" | "scalar"); false if unknown or unsupported. */
bool set_isa(const std::string& name);
/** Names of the tables this CPU can run, best first. */
std::vector<std::string> supported_isas();

}  // namespace lmd
