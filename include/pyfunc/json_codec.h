// JSON codec of MLflow's scoring protocol: request bodies in, predictions out.
//
// Requests (`POST /invocations` with `application/json`, MLflow ≥ 2.0): a JSON object
// with exactly one of the keys `dataframe_split`, `dataframe_records`, `instances`,
// `inputs`, and optionally `params`; other keys are ignored, as MLflow does. The data
// becomes a Table plus the Python shape MLflow would hand to `predict`:
//
//   dataframe_split  {"columns": [...], "data": [[...], ...], "index": [...]}
//                    → kDataFrame; `columns` optional (names "0", "1", ...); `index`
//                    only checked for length; a row may be a scalar (one column).
//   dataframe_records [{"a": 1, "b": "x"}, ...] → kDataFrame; columns in order of first
//                    appearance, a key missing from a record is null. A list of lists
//                    is accepted as pandas does (columns "0", "1", ...).
//   instances/inputs [{"a": 1}, ...] → kColumns for `instances` (MLflow pivots it to a
//                    dict of arrays) and kRecords for `inputs`;
//                    {"a": [1, 2], "b": [3, 4]} → kColumns (all lists of one length);
//                    {"a": 1, "b": "x"} (all scalars) → kColumns with one row;
//                    [[1, 2], [3, 4]] → kArray2D (columns "0", "1", ...);
//                    [1, 2, 3] → kArray1D (one column named "");
//                    5 → kScalar (one column "", one row).
//   unified LLM      a body with any of `messages`, `prompt`, `input` (MLflow's chat and
//                    completion formats): the whole object, less the keys named in the
//                    params schema (which become the params), is the model input, as a
//                    dict → kJson (one string cell with its JSON text). Its response is
//                    P without the `predictions` wrapper.
//
// Column types are inferred as pandas/numpy would from the JSON values: only bools →
// bool; only integers → int64; integers and floats (or an integer beyond int64) →
// float64; only strings → string; only nulls → float64. `null` is a null in every
// type. Python's bare `NaN`, `Infinity` and `-Infinity` (which `json.loads` accepts
// and MLflow clients send) are accepted: float values in float64 columns, nulls in
// int64 and string columns. Numbers are read as json.loads reads them: beyond the double
// range (`1e400`) they are ±inf, below it 0; an integer beyond 64 bits is a float64
// (Python makes an int of any size, pandas an object column). Strings are never taken
// for anything else (`"NaN"`, `"\u0000NaN"` stay strings). `params` and unified LLM bodies
// // may nest arrays and objects 128 levels deep at most. Strings mixed with numbers or
// bools in a column are InvalidArgument (pandas would make an object column, which a
// Table cannot hold). A `dataframe_split`/`dataframe_records` body whose cells hold
// arrays or objects is not parsed here: the caller hands its text to the worker
// (InputShape::kFrameJson), where pandas builds the frame as MLflow's server does.
// With `schema` (the model signature's column types) the named columns are converted
// as MLflow's server casts them: int64 accepts integral floats; float64 accepts ints;
// string accepts numbers and bools (as Python's str()); bool accepts 0/1; timestamp
// accepts ISO 8601 strings.
//
// Errors are InvalidArgument whose message is MLflow's where MLflow validates
// ("Invalid input. The input must be a JSON dictionary with exactly one of the input
// fields {...}. Received dictionary with input fields: [...]. IMPORTANT: ..."), and
// otherwise names the JSON path: "$.dataframe_split.data[3][1]: expected a number,
// string, boolean or null, found object".
//
// Predictions out: `{"predictions": P}` exactly as MLflow's `json.dump(...,
// cls=NumpyEncoder)` writes it — separators ", " and ": ", non-ASCII escaped as \uXXXX,
// floats as Python's repr ("1.0", "1e-05"), NaN/±inf as bare `NaN`/`Infinity`/
// `-Infinity`, ints without a decimal point, timestamps as ISO strings — where P is:
//   kArray1D   [v, ...]                 (ndarray.tolist())
//   kArray2D   [[v, ...], ...]
//   kSeries    [{"<name or 0>": v}, ...]  (pd.DataFrame(series).to_dict("records"))
//   kDataFrame [{"a": v, "b": w}, ...]    (to_dict("records"))
// A null float64 is written `NaN` (pandas holds it as NaN); other nulls `null`.
//
// Thread safety: all functions are reentrant.
#ifndef PYFUNC_JSON_CODEC_H_
#define PYFUNC_JSON_CODEC_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "pyfunc/prediction.h"
#include "pyfunc/status.h"
#include "pyfunc/table.h"
#include "pyfunc/value.h"

namespace pyfunc {

// Which key of the request carried the data.
enum class RequestFormat : uint8_t {
  kDataFrameSplit,
  kDataFrameRecords,
  kInstances,
  kInputs,
  kUnifiedLlm,  // a body with `messages`, `prompt` or `input`: passed to predict whole
};
const char* RequestFormatName(RequestFormat format);  // "dataframe_split", ...

struct ScoringRequest {
  RequestFormat format = RequestFormat::kDataFrameSplit;
  InputShape shape = InputShape::kDataFrame;
  Table table;
  // `params` as given (a map), or null when absent.
  Value params;
};

struct JsonReadOptions {
  // Column types from the model signature; columns not named here are inferred.
  Schema schema;
  // Names in the model's params schema: in a unified LLM request they are the params,
  // and the rest of the body is the model input.
  std::vector<std::string> params_keys;
};

// Parses a scoring request body (UTF-8 JSON).
Result<ScoringRequest> ParseScoringRequest(std::string_view body, const JsonReadOptions& options = {});

// What MLflow's server hands the model's predict for `request`: the request's own shape
// for a unified LLM body, and for `inputs`/`instances` when the model has no column
// signature (with one, MLflow's schema enforcement makes a DataFrame of anything);
// kFrameJson and kTensorsJson always (the worker builds the input from the request's
// text); a DataFrame otherwise.
InputShape PredictInputShape(const ScoringRequest& request, bool column_signature);

// Parses JSON text into a Value (objects keep key order; Python's NaN/Infinity allowed).
// InvalidArgument "Invalid input. Ensure that input is a valid JSON formatted string. ..."
Result<Value> ParseJsonValue(std::string_view text);

// Parses newline-delimited JSON records (one object per line, blank lines skipped) into
// a Table with the column rules above. Errors name the line: "<input>:3: ...".
Result<Table> ParseJsonLines(std::string_view text, const JsonReadOptions& options = {});

// Appends P (the prediction without the wrapper) as MLflow writes it.
void AppendPredictionJson(const Prediction& prediction, std::string* out);
// `{"predictions": P}`.
std::string PredictionsToJson(const Prediction& prediction);

// Writes the predictions of consecutive batches of one input as the one body MLflow
// writes for the whole input ({"predictions": [...]} with every batch's rows), text
// piece by piece, so that a large input's output is never held in memory.
class PredictionStreamWriter {
 public:
  // `unwrapped`: the predictions alone, without {"predictions": ...} (MLflow's answer to
  // a unified LLM request).
  explicit PredictionStreamWriter(bool unwrapped = false) : unwrapped_(unwrapped) {}
  // Appends the text for the next batch's prediction to `out`. A prediction that is one
  // object for the whole batch (a dict, a str: not one value per row) can only be the
  // input's single batch: InvalidArgument when it is not.
  Status Append(const Prediction& prediction, std::string* out);
  // Appends the text that closes the body (and a newline).
  void Finish(std::string* out);

 private:
  bool unwrapped_;
  bool any_rows_ = false;
  bool whole_ = false;  // a single object was written as the predictions
};

}  // namespace pyfunc

#endif  // PYFUNC_JSON_CODEC_H_
