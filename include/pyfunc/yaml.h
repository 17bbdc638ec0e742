// YAML reading and writing with PyYAML's semantics.
//
// MLflow writes MLmodel, conda.yaml and python_env.yaml with `yaml.safe_dump` and reads
// them with `yaml.safe_load`. ParseYaml resolves plain scalars with the same YAML 1.1
// rules as PyYAML's SafeLoader; DumpYaml reproduces `yaml.safe_dump(v,
// default_flow_style=False)` byte for byte: sorted keys, block style, non-indented
// sequences under keys, quoting of strings that would otherwise read back as another
// type, `\x..` escapes for non-ASCII text, and folding of long scalars at 80 columns.
#ifndef PYFUNC_YAML_H_
#define PYFUNC_YAML_H_

#include <string>
#include <string_view>

#include "pyfunc/status.h"
#include "pyfunc/value.h"

namespace pyfunc {

// Parses one YAML document. `source` names the text in error messages, which read
// "<source>:<line>:<column>: <problem>". An empty document is a null Value.
Result<Value> ParseYaml(std::string_view text, const std::string& source);

struct DumpYamlOptions {
  // Sort mapping keys (PyYAML's `sort_keys=True`, MLflow's MLmodel and conda.yaml).
  // python_env.yaml is written with insertion order (`sort_keys=False`).
  bool sort_keys = true;
};

// Serializes `value` as `yaml.safe_dump(value, default_flow_style=False)` would.
std::string DumpYaml(const Value& value, const DumpYamlOptions& options = {});

}  // namespace pyfunc

#endif  // PYFUNC_YAML_H_
