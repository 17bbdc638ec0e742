// The column part of a model's signature (MLmodel `signature.inputs`), as the codecs
// and the server use it: which columns a request must carry, and their Table types.
#ifndef PYFUNC_SIGNATURE_H_
#define PYFUNC_SIGNATURE_H_

#include <string>
#include <vector>

#include "pyfunc/model_spec.h"
#include "pyfunc/table.h"

namespace pyfunc {

struct InputSchema {
  Schema typed;                        // columns with a Table type, for the codecs
  std::vector<std::string> required;   // names a request must carry
  std::vector<std::string> all_names;  // every named column, in order
  bool named = false;                  // a column-based signature with names
  // A column-based signature (named or not). MLflow's schema enforcement turns any
  // input of such a model into a DataFrame; a model without one (or with a tensor
  // signature) gets `inputs`/`instances` as arrays or dicts.
  bool columns = false;
};

// Reads the input schema of `spec`. Models without a signature, and tensor-based or
// unnamed signatures, give an empty schema (no column checks, types inferred).
InputSchema ReadInputSchema(const ModelSpec& spec);

// The names in the signature's params schema (none without one).
std::vector<std::string> ReadParamNames(const ModelSpec& spec);

}  // namespace pyfunc

#endif  // PYFUNC_SIGNATURE_H_
