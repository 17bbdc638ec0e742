// The Arrow C Data Interface structs, exactly as the Arrow specification defines them
// (https://arrow.apache.org/docs/format/CDataInterface.html). The guard macro is the
// one the specification prescribes, so this header coexists with Arrow's own
// `arrow/c/abi.h`, nanoarrow or any other copy of the same definitions.
//
// pyfunc produces and consumes these in `include/pyfunc/table.h`
// (ExportTable / ImportTable).
#ifndef PYFUNC_ARROW_C_DATA_H_
#define PYFUNC_ARROW_C_DATA_H_

#include <cstdint>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE

#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4

struct ArrowSchema {
  // Array type description
  const char* format;
  const char* name;
  const char* metadata;
  int64_t flags;
  int64_t n_children;
  struct ArrowSchema** children;
  struct ArrowSchema* dictionary;

  // Release callback
  void (*release)(struct ArrowSchema*);
  // Opaque producer-specific data
  void* private_data;
};

struct ArrowArray {
  // Array data description
  int64_t length;
  int64_t null_count;
  int64_t offset;
  int64_t n_buffers;
  int64_t n_children;
  const void** buffers;
  struct ArrowArray** children;
  struct ArrowArray* dictionary;

  // Release callback
  void (*release)(struct ArrowArray*);
  // Opaque producer-specific data
  void* private_data;
};

#endif  // ARROW_C_DATA_INTERFACE

#ifdef __cplusplus
}
#endif

#endif  // PYFUNC_ARROW_C_DATA_H_
