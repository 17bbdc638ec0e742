// The cores this process may use: its CPU affinity, capped by a cgroup CPU quota (the
// limit a container runtime or Kubernetes sets: std::thread::hardware_concurrency() counts
// the machine's cores instead, 64 in a pod limited to 2).
#ifndef PYFUNC_SRC_BASE_CORES_H_
#define PYFUNC_SRC_BASE_CORES_H_

#include <optional>
#include <string_view>

namespace pyfunc::base {

// At least 1. Read once; later calls return the first answer.
int UsableCores();

// The cores a cgroup CPU quota allows, rounded up: cgroup v2's cpu.max ("200000 100000":
// 2; "max 100000": no limit) or cgroup v1's cpu.cfs_quota_us and cpu.cfs_period_us
// ("-1": no limit). nullopt for no limit or text that is not a quota.
std::optional<int> CoresOfCpuMax(std::string_view cpu_max);
std::optional<int> CoresOfCfsQuota(std::string_view quota_us, std::string_view period_us);

}  // namespace pyfunc::base

#endif  // PYFUNC_SRC_BASE_CORES_H_
