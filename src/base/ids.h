// Random identifiers: MLflow's run ids, model uuids and logged model ids.
#ifndef PYFUNC_SRC_BASE_IDS_H_
#define PYFUNC_SRC_BASE_IDS_H_

#include <string>

namespace pyfunc::base {

// A random (version 4) UUID as 32 lowercase hex digits, as MLflow's uuid.uuid4().hex.
std::string NewUuidHex();

}  // namespace pyfunc::base

#endif  // PYFUNC_SRC_BASE_IDS_H_
