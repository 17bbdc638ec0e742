// libFuzzer harness for JSON request bodies: ParseScoringRequest (with and without a
// schema), ParseJsonValue and ParseJsonLines, and writing what they produce.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "pyfunc/json_codec.h"
#include "pyfunc/value.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  pyfunc::Result<pyfunc::ScoringRequest> r = pyfunc::ParseScoringRequest(body);
  if (r.ok()) {
    pyfunc::Prediction p;
    p.table = r->table;
    p.shape = pyfunc::PredictionShape::kDataFrame;
    (void)pyfunc::PredictionsToJson(p);
    (void)pyfunc::ToJson(r->params);
  }
  pyfunc::JsonReadOptions typed;
  typed.schema = {{"a", pyfunc::DataType::kInt64},     {"b", pyfunc::DataType::kFloat64},
                  {"c", pyfunc::DataType::kString},    {"d", pyfunc::DataType::kBool},
                  {"e", pyfunc::DataType::kTimestamp}, {"0", pyfunc::DataType::kInt64}};
  typed.params_keys = {"temperature"};
  (void)pyfunc::ParseScoringRequest(body, typed);
  pyfunc::Result<pyfunc::Value> v = pyfunc::ParseJsonValue(body);
  if (v.ok()) (void)pyfunc::ToJson(*v);
  (void)pyfunc::ParseJsonLines(body, typed);
  return 0;
}
