// Parquet and Arrow IPC files in a build without Arrow C++ (CMake found no pyarrow, or
// PYFUNC_WITH_ARROW=OFF): each says that this build cannot read or write them.
#include "files/table_files.h"

namespace pyfunc {
namespace {

Status Unavailable(const std::string& what) {
  return Status::InvalidArgument(what +
                                 ": this build of pyfunc has no Parquet or Arrow support (it was built without "
                                 "Arrow C++; build it where pyarrow is installed, or give CSV or JSON)");
}

}  // namespace

bool ArrowFilesAvailable() { return false; }

Result<std::unique_ptr<TableFileReader>> OpenParquetReader(int, const std::string& name, int64_t) {
  return Unavailable(name);
}

Result<std::unique_ptr<TableFileReader>> OpenArrowReader(int, const std::string& name, int64_t) {
  return Unavailable(name);
}

Result<std::unique_ptr<TableFileWriter>> OpenTableFileWriter(TableFileFormat, OutputFile* out) {
  return Unavailable(out->name());
}

}  // namespace pyfunc
