// The Open Inference Protocol's gRPC codec (proto/grpc_predict_v2.proto): a
// ModelInferRequest to the request the scoring server predicts, a Prediction to a
// ModelInferResponse. Private to src/server; built only with gRPC (PYFUNC_WITH_GRPC).
//
// The tensor rules are oip.h's, shared with the REST codec, so a tensor gives the same
// columns and a Prediction the same output tensors over both protocols. What is gRPC's
// own: elements come in the typed field of their datatype (`contents`) or all inputs in
// `raw_input_contents` (little-endian, BYTES as 4-byte little-endian lengths and bytes);
// answers carry every output in `raw_output_contents`, as Triton answers, which
// tritonclient's InferResult.as_numpy and KServe's InferResponse both read.
//
// Every cost is bounded by the message (whose size the server limits) or by OipLimits:
// a shape's product is checked against the elements actually present before anything is
// allocated for it.
#ifndef PYFUNC_SRC_SERVER_GRPC_CODEC_H_
#define PYFUNC_SRC_SERVER_GRPC_CODEC_H_

#include <string>

#include "grpc_predict_v2.pb.h"
#include "pyfunc/prediction.h"
#include "pyfunc/status.h"
#include "server/oip.h"

namespace pyfunc::server {

// The request's tensors as columns, its `parameters` (less content_type and headers,
// keys sorted) as the model's params, its id. InvalidArgument naming the tensor and the
// problem for: a shape the rules refuse, an unsupported datatype, elements in another
// field than the datatype's, a count of elements that is not the shape's, raw contents
// of the wrong size or with a BYTES length past their end, raw contents for some inputs
// but not all (or beside typed contents), UINT64 values beyond int64.
Result<OipRequest> ParseGrpcInferRequest(const inference::ModelInferRequest& request, const OipLimits& limits = {});

// Fills `response` with `p`'s OipOutputs, their elements in raw_output_contents. Raw
// contents have no nulls: a null float is NaN, any other null the type's zero (0, false,
// empty bytes).
void WriteGrpcInferResponse(const std::string& model_name, const std::string& id, const Prediction& p,
                            inference::ModelInferResponse* response);

}  // namespace pyfunc::server

#endif  // PYFUNC_SRC_SERVER_GRPC_CODEC_H_
