// The server's one table from Status to HTTP status and MLflow error body: a test per row.
// The expected bodies are what MLflow 3's MlflowException.serialize_as_json() writes.
#include <nlohmann/json.hpp>

#include "server/http_errors.h"
#include "test_util.h"

namespace pyfunc {
namespace {

nlohmann::json Body(const HttpError& e) { return nlohmann::json::parse(e.Body()); }

TEST(HttpErrorsTest, InvalidArgumentIsBadRequest400) {
  HttpError e = HttpErrorFromStatus(Status::InvalidArgument("Invalid input. bad"));
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.content_type, "application/json");
  EXPECT_EQ(e.Body(), R"({"error_code": "BAD_REQUEST", "message": "Invalid input. bad", "sqlstate": "KAM00", )"
                      R"("error_class": "INVALID_PARAMETER_VALUE"})");
}

TEST(HttpErrorsTest, NotFoundIs404) {
  HttpError e = HttpErrorFromStatus(Status::NotFound("x"));
  EXPECT_EQ(e.status, 404);
  EXPECT_EQ(Body(e)["error_code"], "RESOURCE_DOES_NOT_EXIST");
}

TEST(HttpErrorsTest, AlreadyExistsIs400) {
  HttpError e = HttpErrorFromStatus(Status::AlreadyExists("x"));
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(Body(e)["error_code"], "RESOURCE_ALREADY_EXISTS");
}

TEST(HttpErrorsTest, ModelErrorIsMlflowsUnexpectedErrorWithTheTraceAsStackTrace) {
  HttpError e = HttpErrorFromStatus(Status::ModelError("ValueError: no \"way\""));
  EXPECT_EQ(e.status, 400);
  nlohmann::json j = Body(e);
  EXPECT_EQ(j["error_code"], "BAD_REQUEST");
  EXPECT_EQ(j["message"],
            "Encountered an unexpected error while evaluating the model. Verify that the serialized input "
            "Dataframe is compatible with the model for inference.");
  EXPECT_EQ(j["stack_trace"], "ValueError: no \"way\"");
}

TEST(HttpErrorsTest, SchemaEnforcementFailureIsMlflowsInvalidParameterValue) {
  HttpError e =
      HttpErrorFromStatus(Status::SchemaMismatch("Failed to enforce schema of data 'x' with schema 'y'. Error: z"));
  EXPECT_EQ(e.status, 400);
  nlohmann::json j = Body(e);
  EXPECT_EQ(j["error_code"], "INVALID_PARAMETER_VALUE");
  EXPECT_EQ(j["message"], "Failed to enforce schema of data 'x' with schema 'y'. Error: z");
  EXPECT_EQ(j["sqlstate"], "KAM01");
  EXPECT_EQ(j["error_class"], "SCHEMA_ENFORCEMENT_FAILED");
  EXPECT_FALSE(j.contains("stack_trace"));
}

TEST(HttpErrorsTest, InvalidParametersAreMlflowsPlainInvalidParameterValue) {
  HttpError e = HttpErrorFromStatus(Status::InvalidParams("Invalid parameters found: {x}"));
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.Body(), R"({"error_code": "INVALID_PARAMETER_VALUE", "message": "Invalid parameters found: {x}", )"
                      R"("sqlstate": "KAM00", "error_class": "INVALID_PARAMETER_VALUE"})");
}

// A model's exception text of any length is cut, so that one request cannot make the
// server build and send a response of its choosing size.
TEST(HttpErrorsTest, LongMessagesAreCut) {
  HttpError e = HttpErrorFromStatus(Status::ModelError("ValueError: " + std::string(1 << 20, 'x')));
  EXPECT_LT(e.Body().size(), 70u * 1024);
  EXPECT_THAT(Body(e)["stack_trace"].get<std::string>(), ::testing::HasSubstr("more bytes]"));
}

TEST(HttpErrorsTest, DeadlineExceededIsMlflowsPlainText504) {
  HttpError e = HttpErrorFromStatus(Status::DeadlineExceeded("slow"));
  EXPECT_EQ(e.status, 504);
  EXPECT_EQ(e.content_type, "application/json");
  EXPECT_EQ(e.Body(), "Request processing time exceeded limit");
}

TEST(HttpErrorsTest, UnavailableIs503WithRetryAfter) {
  HttpError e = HttpErrorFromStatus(Status::Unavailable("queue full"));
  EXPECT_EQ(e.status, 503);
  EXPECT_EQ(e.header_name, "Retry-After");
  EXPECT_EQ(e.header_value, "1");
  EXPECT_EQ(Body(e)["error_code"], "TEMPORARILY_UNAVAILABLE");
}

TEST(HttpErrorsTest, IOErrorAndInternalAre500) {
  for (const Status& s : {Status::IOError("disk"), Status::Internal("bug")}) {
    HttpError e = HttpErrorFromStatus(s);
    EXPECT_EQ(e.status, 500);
    EXPECT_EQ(Body(e)["error_code"], "INTERNAL_ERROR");
    EXPECT_EQ(Body(e)["error_class"], "CLIENT_INTERNAL_ERROR");
  }
}

TEST(HttpErrorsTest, UnsupportedMediaTypeIsPlainText415) {
  HttpError e = UnsupportedMediaType("The scoring server only supports UTF-8");
  EXPECT_EQ(e.status, 415);
  EXPECT_EQ(e.content_type, "text/plain");
  EXPECT_EQ(e.Body(), "The scoring server only supports UTF-8");
}

TEST(HttpErrorsTest, PayloadTooLargeIs413NamingTheLimit) {
  HttpError e = PayloadTooLarge(1024);
  EXPECT_EQ(e.status, 413);
  EXPECT_THAT(Body(e)["message"].get<std::string>(), ::testing::HasSubstr("1024 bytes"));
}

TEST(HttpErrorsTest, MessagesAreEscapedAsPythonJsonDumps) {
  HttpError e = HttpErrorFromStatus(Status::InvalidArgument("caf\xc3\xa9 \"q\", a: b"));
  EXPECT_EQ(e.Body(), R"({"error_code": "BAD_REQUEST", "message": "caf\u00e9 \"q\", a: b", "sqlstate": "KAM00", )"
                      R"("error_class": "INVALID_PARAMETER_VALUE"})");
}

}  // namespace
}  // namespace pyfunc
