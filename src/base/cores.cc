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

// The process's cgroup paths from /proc/self/cgroup: the v2 one ("0::/path") and the v1
// cpu controller's ("4:cpu,cpuacct:/path").
void OwnCgroups(std::string* v2, std::string* v1_cpu) {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    const size_t a = line.find(':');
    const size_t b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1);
    const std::string path = line.substr(b + 1);
    if (line.compare(0, a, "0") == 0 && controllers.empty()) *v2 = path;
    std::string c;
    for (size_t i = 0; i <= controllers.size(); ++i) {
      if (i == controllers.size() || controllers[i] == ',') {
        if (c == "cpu") *v1_cpu = path;
        c.clear();
      } else {
        c += controllers[i];
      }
    }
  }
}

// The tightest quota of the process's own cgroup and of the hierarchy's root as mounted
// here (a container sees its own cgroup there; a process on a host sees the machine's).
std::optional<int> CgroupQuota() {
  std::string v2, v1;
  OwnCgroups(&v2, &v1);
  std::optional<int> best;
  auto take = [&](std::optional<int> q) {
    if (q && (!best || *q < *best)) best = q;
  };
  for (const std::string& dir : {"/sys/fs/cgroup" + v2, std::string("/sys/fs/cgroup")}) {
    take(CoresOfCpuMax(ReadSmall((dir + "/cpu.max").c_str())));
  }
  for (const char* mount : {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"}) {
    for (const std::string& dir : {mount + v1, std::string(mount)}) {
      take(CoresOfCfsQuota(ReadSmall((dir + "/cpu.cfs_quota_us").c_str()),
                           ReadSmall((dir + "/cpu.cfs_period_us").c_str())));
    }
  }
  return best;
}

int Compute() {
  int cores = 0;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cores = CPU_COUNT(&set);
  if (cores <= 0) cores = static_cast<int>(std::thread::hardware_concurrency());
  if (std::optional<int> quota = CgroupQuota()) cores = std::min(cores, *quota);
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
