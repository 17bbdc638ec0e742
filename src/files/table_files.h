// Parquet and Arrow IPC files as Tables: read batch by batch, written batch by batch.
//
// Implemented with Apache Arrow's C++ libraries (src/files/arrow_files.cc) in a build
// that found them (CMake's PYFUNC_WITH_ARROW), and by arrow_files_unavailable.cc in one
// that did not: there every function but ArrowFilesAvailable returns Unimplemented,
// saying so. Columns cross between Arrow and pyfunc through the Arrow C Data Interface
// (ExportTable / ImportTable), so nothing else in pyfunc includes an Arrow header.
//
// Readers read one record batch at a time (a Parquet file row group by row group), so
// memory holds one batch, whatever the file's size. Writers append batches; a file
// takes the first batch's schema, and later batches are cast to it where pandas would
// (an int64 batch into a float64 column, an all-null column into any type).
#ifndef PYFUNC_FILES_TABLE_FILES_H_
#define PYFUNC_FILES_TABLE_FILES_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "pyfunc/file_system.h"
#include "pyfunc/status.h"
#include "pyfunc/table.h"

namespace pyfunc {

// Whether this build reads and writes Parquet and Arrow IPC files.
bool ArrowFilesAvailable();

class TableFileReader {
 public:
  virtual ~TableFileReader() = default;
  // The next batch of at most the reader's batch rows, or nullopt at the end. Errors
  // name the file and, for Parquet, the row group.
  virtual Result<std::optional<Table>> Next() = 0;
  // The file's bytes consumed so far (an estimate: the row groups read).
  virtual int64_t bytes_done() const = 0;
};

// Opens a Parquet file on `fd` (the reader takes a duplicate; `name` is for messages).
// Checks the schema at once: a column of a type pyfunc has no column type for (a date,
// a list, a struct) is InvalidArgument naming the column and its Arrow type. Batches
// hold at most `batch_rows` rows (0: a row group each) and never span row groups.
Result<std::unique_ptr<TableFileReader>> OpenParquetReader(int fd, const std::string& name, int64_t batch_rows);

// Opens an Arrow IPC file (the random-access format, "ARROW1" magic, Feather v2) or
// stream on `fd`, told apart by their first bytes. A stream may be a pipe. Batches are
// the file's record batches, split to at most `batch_rows` rows (0: as they are).
Result<std::unique_ptr<TableFileReader>> OpenArrowReader(int fd, const std::string& name, int64_t batch_rows);

class TableFileWriter {
 public:
  virtual ~TableFileWriter() = default;
  // Appends the rows of `table`. InvalidArgument when its columns differ from the
  // first batch's in name, or in type where no cast applies.
  virtual Status Write(const Table& table) = 0;
  // Writes the footer. The output file still needs its Commit.
  virtual Status Finish() = 0;
};

enum class TableFileFormat { kParquet, kArrowFile, kArrowStream };

// A writer of `format` into `out` (which must outlive it).
Result<std::unique_ptr<TableFileWriter>> OpenTableFileWriter(TableFileFormat format, OutputFile* out);

}  // namespace pyfunc

#endif  // PYFUNC_FILES_TABLE_FILES_H_
