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
// Hostile input gives an InvalidArgument, in time and memory linear in its size:
//   * text that is not UTF-8, or holds characters PyYAML refuses (control characters
//     other than TAB, LF, CR, NEL), is refused as PyYAML refuses it;
//   * aliases expand into copies (a Value is a tree), at most 4 nodes per byte of the
//     text plus 100,000 in all: "...: alias expansion exceeds N nodes ...";
//   * nesting deeper than 512 levels (yaml-cpp stops at about 500);
//   * integers beyond int64 (PyYAML would make a Python int of any size), and tagged
//     `!!int`/`!!float` scalars that are not numbers.
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
