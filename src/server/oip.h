// The Open Inference Protocol (KServe V2) REST codec of the scoring server: an infer
// request body to a Table, a Prediction to an infer response. Private to src/server.
//
// Requests come from clients the server does not control, so every cost is bounded by
// the body's size or by OipLimits: JSON nesting depth (no recursion on client data),
// tensor shapes checked with overflow-safe arithmetic against the data's length, and the
// number of columns a request may create (a zero-row tensor of shape [0, K] has no data
// to bound K).
#ifndef PYFUNC_SERVER_OIP_H_
#define PYFUNC_SERVER_OIP_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "pyfunc/prediction.h"
#include "pyfunc/status.h"
#include "pyfunc/table.h"
#include "pyfunc/value.h"

namespace pyfunc::server {

struct OipLimits {
  // Deepest nesting of arrays and objects in the body. A tensor's data has one level
  // per dimension (at most 2 here) and parameters rarely more than a few.
  int max_depth = 64;
  // Columns one request may produce (input tensors, or K of a [N, K] tensor).
  size_t max_columns = 65536;
};

struct OipRequest {
  Table table;
  Value params;                   // `parameters` less content_type/headers; null when none
  std::optional<std::string> id;  // echoed in the response
};

// Parses an infer request: each input tensor of shape [N] or [N, 1] becomes a column
// named after it; a single input of shape [N, K] becomes K columns "0".."K-1".
// InvalidArgument, naming the tensor and the problem, for any malformed body.
Result<OipRequest> ParseOipRequest(std::string_view body, const OipLimits& limits = {});

// The infer response for `p`: output columns become tensors named after them
// ("predict" for an unnamed one); a 2-D array output of one type is one [N, K] tensor.
std::string OipResponse(const std::string& model_name, const std::optional<std::string>& id, const Prediction& p);

// The OIP datatype of a column type (model metadata and responses).
const char* OipDatatype(DataType type);

}  // namespace pyfunc::server

#endif  // PYFUNC_SERVER_OIP_H_
