// The Open Inference Protocol (KServe V2): the tensor rules of the scoring server, and its
// REST codec (an infer request body to a Table, a Prediction to an infer response).
// Private to src/server. The gRPC codec (grpc_codec.h) reads and writes the same tensors
// with the same rules, below, so that both protocols give one request the same answer.
//
// Requests come from clients the server does not control, so every cost is bounded by
// the body's size or by OipLimits: JSON nesting depth (no recursion on client data),
// tensor shapes checked with overflow-safe arithmetic against the data's length, and the
// number of columns a request may create (a zero-row tensor of shape [0, K] has no data
// to bound K).
#ifndef PYFUNC_SERVER_OIP_H_
#define PYFUNC_SERVER_OIP_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

// --- The tensor rules of both codecs ---------------------------------------------------

// The column type an input tensor of `datatype` is read into: BOOL, INT8..UINT64 as
// int64, FP16..FP64 as float64, BYTES as string (the worker narrows them to the
// signature's types). InvalidArgument naming the datatype for any other.
Result<DataType> OipColumnType(std::string_view datatype);

// At least one input tensor and at most limits.max_columns; InvalidArgument otherwise.
Status CheckOipInputCount(size_t num_inputs, const OipLimits& limits);

// An input tensor whose name, datatype and shape passed the rules.
struct OipInput {
  std::string where;  // "inputs[I] 'NAME'", the start of every message about it
  std::string name;
  DataType type = DataType::kFloat64;
  int64_t rows = 0;   // N
  int64_t width = 1;  // K of [N, K]; 1 for [N]
  size_t values = 0;  // N * K, without overflow
};

// Checks input tensor `index` of `num_inputs`: a datatype OipColumnType reads, a shape
// [N] or [N, K] of sizes >= 0 whose product does not overflow, K within
// limits.max_columns, and K > 1 only for the sole input. InvalidArgument naming the
// tensor and the problem.
Result<OipInput> ReadOipInput(size_t index, std::string_view name, std::string_view datatype, const int64_t* shape,
                              size_t rank, size_t num_inputs, const OipLimits& limits);

// InvalidArgument unless the tensor's data holds exactly its shape's number of values
// (`found`; `more` when the count stopped early because there were more).
Status CheckOipValueCount(const OipInput& input, size_t found, bool more = false);

// The columns of a request, in the order its tensors make them.
struct OipColumns {
  std::vector<std::string> names;
  std::vector<Column> columns;
};

// Appends the input's columns to `out`: [N] and [N, 1] make one column named after the
// tensor, [N, K] makes K columns "0".."K-1", column k taking elements r * K + k.
// `append(i, builder)` appends element i (row-major) to `builder` (of input.type) and
// returns a Status; the first error is returned. The caller has checked the count.
template <typename Append>
Status AppendOipColumns(const OipInput& input, Append&& append, OipColumns* out) {
  for (int64_t k = 0; k < input.width; ++k) {
    ColumnBuilder b(input.type);
    b.Reserve(input.rows);
    for (int64_t r = 0; r < input.rows; ++r) {
      Status st = append(static_cast<size_t>(r * input.width + k), &b);
      if (!st.ok()) return st;
    }
    out->names.push_back(input.width == 1 ? input.name : std::to_string(k));
    out->columns.push_back(b.Finish());
  }
  return Status::OK();
}

// The request parameters that are the protocol's own (content_type, headers), not the
// model's params.
bool IsOipProtocolParameter(std::string_view key);

// An output tensor of a Prediction: output columns become tensors named after them
// ("predict" for an unnamed one), of shape [N] or [N, cell shape...]; a 2-D array output
// of one type (no tensor cells) is one [N, K] tensor "predict" taking the columns across.
struct OipOutput {
  std::string name;
  std::vector<int64_t> shape;
  DataType type = DataType::kFloat64;
  int column = -1;  // the table's column; -1 for the [N, K] tensor of every column
};
std::vector<OipOutput> OipOutputs(const Prediction& p);

// Calls visit(column, row, index) for each element of `o` in row-major order: value
// `index` of `column`, which is null when column.IsNull(row).
template <typename Visit>
void ForEachOipElement(const Table& t, const OipOutput& o, Visit&& visit) {
  if (o.column < 0) {
    for (int64_t r = 0; r < t.num_rows(); ++r)
      for (int i = 0; i < t.num_columns(); ++i) visit(t.column(i), r, r);
    return;
  }
  const Column& c = t.column(o.column);
  const int64_t cell = c.cell_size();
  for (int64_t r = 0; r < c.length(); ++r)
    for (int64_t k = r * cell; k < (r + 1) * cell; ++k) visit(c, r, k);
}

// The model's input tensors as model metadata lists them: one [-1] tensor per typed
// signature column (none for a model without a column signature).
struct OipTensorMetadata {
  std::string name;
  std::string datatype;
  std::vector<int64_t> shape;
};
std::vector<OipTensorMetadata> OipModelInputs(const Schema& typed);

// --- The REST codec ---------------------------------------------------------------

struct OipRequest {
  Table table;
  Value params;                   // `parameters` less content_type/headers; null when none
  std::optional<std::string> id;  // echoed in the response
};

// Parses an infer request body: the tensors become columns by the rules above.
// InvalidArgument, naming the tensor and the problem, for any malformed body.
Result<OipRequest> ParseOipRequest(std::string_view body, const OipLimits& limits = {});

// The infer response for `p`: its OipOutputs, with NaN and infinities written null.
std::string OipResponse(const std::string& model_name, const std::optional<std::string>& id, const Prediction& p);

// The OIP datatype of a column type (model metadata and responses).
const char* OipDatatype(DataType type);

}  // namespace pyfunc::server

#endif  // PYFUNC_SERVER_OIP_H_
