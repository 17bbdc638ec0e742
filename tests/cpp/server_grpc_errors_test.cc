// The gRPC front's one table from Status to gRPC status: a test per row, with the
// messages of the Open Inference Protocol's REST error bodies.
#include "server/grpc_errors.h"

#include <string>

#include "server/http_errors.h"
#include "test_util.h"

namespace pyfunc::server {
namespace {

using ::testing::HasSubstr;

TEST(GrpcErrorsTest, InputErrorsAreInvalidArgument) {
  for (const Status& st :
       {Status::InvalidArgument("bad"), Status::SchemaMismatch("bad"), Status::InvalidParams("bad")}) {
    const GrpcError e = GrpcErrorFromStatus(st);
    EXPECT_EQ(e.code, GrpcCode::kInvalidArgument);
    EXPECT_EQ(e.message, "bad");
  }
}

TEST(GrpcErrorsTest, ModelErrorIsInvalidArgumentWithMlflowsMessageAndThePythonError) {
  const GrpcError e = GrpcErrorFromStatus(Status::ModelError("ValueError: no"));
  EXPECT_EQ(e.code, GrpcCode::kInvalidArgument);
  EXPECT_THAT(e.message, HasSubstr("Encountered an unexpected error while evaluating the model."));
  EXPECT_THAT(e.message, HasSubstr(": ValueError: no"));
  // The REST body's text, word for word.
  EXPECT_EQ(HttpErrorFromStatus(Status::ModelError("ValueError: no")).OipBody(),
            ToJson(Value(Value::Map{{"error", e.message}})));
}

TEST(GrpcErrorsTest, NotFoundAlreadyExistsDeadlineUnavailableAndInternal) {
  EXPECT_EQ(GrpcErrorFromStatus(Status::NotFound("Model x not found")).code, GrpcCode::kNotFound);
  EXPECT_EQ(GrpcErrorFromStatus(Status::AlreadyExists("x")).code, GrpcCode::kAlreadyExists);
  const GrpcError late = GrpcErrorFromStatus(Status::DeadlineExceeded("predict took 2 s"));
  EXPECT_EQ(late.code, GrpcCode::kDeadlineExceeded);
  EXPECT_EQ(late.message, "Request processing time exceeded limit");
  const GrpcError busy = GrpcErrorFromStatus(Status::Unavailable("the queue is full"));
  EXPECT_EQ(busy.code, GrpcCode::kUnavailable);
  EXPECT_EQ(busy.message, "the queue is full");
  EXPECT_EQ(GrpcErrorFromStatus(Status::Internal("x")).code, GrpcCode::kInternal);
  EXPECT_EQ(GrpcErrorFromStatus(Status::IOError("x")).code, GrpcCode::kInternal);
  EXPECT_EQ(GrpcErrorFromStatus(Status::LoadFailed("x")).code, GrpcCode::kInternal);
}

TEST(GrpcErrorsTest, MessagesAreBoundedAndCodesNamed) {
  const GrpcError e = GrpcErrorFromStatus(Status::ModelError(std::string(1 << 20, 'x')));
  EXPECT_LT(e.message.size(), 70u * 1024);
  EXPECT_STREQ(GrpcCodeName(0), "OK");
  EXPECT_STREQ(GrpcCodeName(3), "INVALID_ARGUMENT");
  EXPECT_STREQ(GrpcCodeName(14), "UNAVAILABLE");
  EXPECT_STREQ(GrpcCodeName(99), "UNKNOWN");
}

}  // namespace
}  // namespace pyfunc::server
