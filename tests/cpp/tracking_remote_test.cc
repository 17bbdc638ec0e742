// Tracking stores other than the file store: a REST server that is down, bad tracking
// URIs, sqlite files that are missing. (The REST store against a real MLflow server is
// tested from Python: tests/python/test_tracking_server.py.)
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "pyfunc/model_uri.h"
#include "pyfunc/tracking.h"
#include "test_util.h"

namespace pyfunc {
namespace {

// A loopback port with nothing listening on it.
int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST(TrackingRestStore, ServerDownIsRetriedThenReported) {
  ::setenv("PYFUNC_HTTP_MAX_RETRIES", "2", 1);
  ::setenv("PYFUNC_HTTP_BACKOFF", "0.01", 1);
  auto store = OpenTrackingStore("http://127.0.0.1:" + std::to_string(ClosedPort()));
  PYFUNC_ASSERT_OK(store);
  auto start = std::chrono::steady_clock::now();
  auto run = (*store)->GetRun("0123456789abcdef0123456789abcdef");
  EXPECT_EQ(run.status().code(), StatusCode::kIOError);
  EXPECT_THAT(run.status().message(), ::testing::HasSubstr("gave up after 3 attempts"));
  EXPECT_THAT(run.status().message(), ::testing::HasSubstr("/api/2.0/mlflow/runs/get"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  Status logged = (*store)->LogBatch("0123456789abcdef0123456789abcdef", {{"m", 1.0, 1, 0}}, {}, {});
  EXPECT_EQ(logged.code(), StatusCode::kIOError);
  ::unsetenv("PYFUNC_HTTP_MAX_RETRIES");
  ::unsetenv("PYFUNC_HTTP_BACKOFF");
}

TEST(TrackingRestStore, BadRunIdsNeverReachTheServer) {
  auto store = OpenTrackingStore("http://127.0.0.1:1");
  PYFUNC_ASSERT_OK(store);
  EXPECT_EQ((*store)->GetRun("../x").status().code(), StatusCode::kNotFound);
  EXPECT_EQ((*store)->GetRun("a b").status().code(), StatusCode::kNotFound);
}

TEST(TrackingStores, BadTrackingUris) {
  EXPECT_EQ(OpenTrackingStore("ftp://host/x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenTrackingStore("sqlite://relative.db").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenTrackingStore("http://").status().code(), StatusCode::kInvalidArgument);
  // A database that does not exist yet opens (it is created by the first write) and is empty.
  auto missing = OpenTrackingStore("sqlite:////nonexistent/dir/mlflow.db");
  PYFUNC_ASSERT_OK(missing);
  EXPECT_EQ((*missing)->GetRun("0123456789abcdef0123456789abcdef").status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists("/nonexistent/dir"));
}

TEST(TrackingModelUri, MalformedUris) {
  testing::TempDir dir;
  ResolveModelUriOptions opts{"file://" + dir.Join("mlruns"), dir.Join("cache")};
  EXPECT_EQ(ResolveModelUri("", opts).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ResolveModelUri("runs:/", opts).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ResolveModelUri("models:/", opts).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ResolveModelUri("models:/name/Production", opts).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ResolveModelUri("s3://bucket/model", opts).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ResolveModelUri(dir.Join("missing"), opts).status().code(), StatusCode::kNotFound);
  auto here = ResolveModelUri("file://" + dir.path(), opts);
  PYFUNC_ASSERT_OK(here);
  EXPECT_EQ(*here, dir.path());
}

}  // namespace
}  // namespace pyfunc
