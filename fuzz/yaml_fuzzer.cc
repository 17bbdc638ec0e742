// libFuzzer harness for MLmodel files: ParseYaml and ModelSpec, then the properties
// pyfunc promises for whatever parses — it writes back as YAML that reads back to the
// same Value, and its JSON form is produced without throwing.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "pyfunc/model_spec.h"
#include "pyfunc/value.h"
#include "pyfunc/yaml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  pyfunc::Result<pyfunc::Value> v = pyfunc::ParseYaml(text, "MLmodel");
  if (v.ok()) {
    (void)pyfunc::ToJson(*v);
    (void)pyfunc::ToJson(*v, 2);
    pyfunc::DumpYamlOptions insertion_order;  // so that the Values compare equal
    insertion_order.sort_keys = false;
    (void)pyfunc::DumpYaml(*v);
    const std::string written = pyfunc::DumpYaml(*v, insertion_order);
    pyfunc::Result<pyfunc::Value> back = pyfunc::ParseYaml(written, "MLmodel");
    if (!back.ok() || !(*back == *v)) {
      std::fprintf(stderr, "round trip failed: %s\n--- written:\n%s\n",
                   back.ok() ? "different value" : back.status().ToString().c_str(), written.c_str());
      std::abort();
    }
  }
  pyfunc::Result<pyfunc::ModelSpec> spec = pyfunc::ModelSpec::Parse(text, "MLmodel");
  if (spec.ok()) {
    (void)spec->ToYaml();
    (void)spec->python_function();
    (void)spec->flavor_names();
  }
  return 0;
}
