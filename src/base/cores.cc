#include "base/cores.h"

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

namespace pyfunc::base {
namespace {

std::optional<int64_t> Integer(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

std::optional<int> Quota(std::optional<int64_t> quota, std::optional<int64_t> period) {
  if (!quota || !period || *quota <= 0 || *period <= 0) return std::nullopt;
  const int64_t cores = (*quota + *period - 1) / *period;
  return static_cast<int>(std::min<int64_t>(std::max<int64_t>(cores, 1), 1 << 20));
}

std::string ReadSmall(const char* path) {
  std::ifstream in(path);
  std::string text;
  std::getline(in, text);
  return text;
}

int Compute() {
  int cores = 0;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cores = CPU_COUNT(&set);
  if (cores <= 0) cores = static_cast<int>(std::thread::hardware_concurrency());
  std::optional<int> quota = CoresOfCpuMax(ReadSmall("/sys/fs/cgroup/cpu.max"));
  if (!quota) {
    quota = CoresOfCfsQuota(ReadSmall("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
                            ReadSmall("/sys/fs/cgroup/cpu/cpu.cfs_period_us"));
  }
  if (quota) cores = std::min(cores, *quota);
  return std::max(1, cores);
}

}  // namespace

std::optional<int> CoresOfCpuMax(std::string_view cpu_max) {
  const size_t space = cpu_max.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  if (cpu_max.substr(0, space) == "max") return std::nullopt;
  return Quota(Integer(cpu_max.substr(0, space)), Integer(cpu_max.substr(space + 1)));
}

std::optional<int> CoresOfCfsQuota(std::string_view quota_us, std::string_view period_us) {
  return Quota(Integer(quota_us), Integer(period_us));
}

int UsableCores() {
  static const int cores = Compute();
  return cores;
}

}  // namespace pyfunc::base
