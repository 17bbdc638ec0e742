// The cores a cgroup CPU quota allows (a container's CPU limit), as cgroup v2 and v1
// write them.
#include "base/cores.h"

#include <gtest/gtest.h>

#include <thread>

#include "pyfunc/model.h"

namespace pyfunc::base {
namespace {

TEST(CoresTest, CgroupV2CpuMaxRoundsUpAndMaxIsNoLimit) {
  EXPECT_EQ(CoresOfCpuMax("200000 100000\n"), 2);
  EXPECT_EQ(CoresOfCpuMax("150000 100000"), 2);  // 1.5 CPUs: two threads can use them
  EXPECT_EQ(CoresOfCpuMax("50000 100000"), 1);
  EXPECT_EQ(CoresOfCpuMax("max 100000"), std::nullopt);
  for (const char* bad : {"", "max", "abc 100000", "100000 0", "-5 100000", "100000 x", "1e5 100000"}) {
    EXPECT_EQ(CoresOfCpuMax(bad), std::nullopt) << bad;
  }
}

TEST(CoresTest, CgroupV1QuotaAndPeriod) {
  EXPECT_EQ(CoresOfCfsQuota("400000\n", "100000\n"), 4);
  EXPECT_EQ(CoresOfCfsQuota("-1", "100000"), std::nullopt);
  EXPECT_EQ(CoresOfCfsQuota("", ""), std::nullopt);
}

TEST(CoresTest, UsableCoresIsAtLeastOneAndAtMostTheMachines) {
  const int cores = UsableCores();
  EXPECT_GE(cores, 1);
  EXPECT_LE(cores, static_cast<int>(std::thread::hardware_concurrency()));
  EXPECT_EQ(pyfunc::UsableCores(), cores);
}

}  // namespace
}  // namespace pyfunc::base
