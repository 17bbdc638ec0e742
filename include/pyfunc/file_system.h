// FileSystem: the seam between pyfunc and the operating system's files.
//
// Everything that creates, copies or renames files in a model directory goes through a
// FileSystem, so tests can inject a failure at any step (FileSystemWrapper overrides
// one call) and check that nothing half-done is left behind. FileSystem::Default() is
// the POSIX implementation; it is thread-safe.
//
// Errors: NotFound for a missing path, AlreadyExists for a destination that exists,
// IOError for anything else the OS refuses; messages name the path and the errno text.
#ifndef PYFUNC_FILE_SYSTEM_H_
#define PYFUNC_FILE_SYSTEM_H_

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "pyfunc/status.h"

namespace pyfunc {

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  static FileSystem* Default();

  virtual bool Exists(const std::string& path) = 0;
  virtual bool IsDirectory(const std::string& path) = 0;
  virtual Result<std::vector<std::string>> ListDir(const std::string& path) = 0;  // names, sorted
  virtual Result<std::string> ReadFile(const std::string& path) = 0;
  // Creates or truncates `path` and writes `data`, flushed to disk.
  virtual Status WriteFile(const std::string& path, std::string_view data) = 0;
  virtual Status CopyFile(const std::string& from, const std::string& to) = 0;
  virtual Status CreateDir(const std::string& path) = 0;  // the parent must exist
  // rename(2): atomic replacement of a file, or of an empty directory.
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  virtual Status RemoveAll(const std::string& path) = 0;
  // Creates a new directory "<parent>/<prefix>XXXXXX" and returns its path.
  virtual Result<std::string> MakeTempDir(const std::string& parent, const std::string& prefix) = 0;
};

// Forwards every call to `target`; subclass it to change one call in a test.
class FileSystemWrapper : public FileSystem {
 public:
  explicit FileSystemWrapper(FileSystem* target) : target_(target) {}
  bool Exists(const std::string& p) override { return target_->Exists(p); }
  bool IsDirectory(const std::string& p) override { return target_->IsDirectory(p); }
  Result<std::vector<std::string>> ListDir(const std::string& p) override { return target_->ListDir(p); }
  Result<std::string> ReadFile(const std::string& p) override { return target_->ReadFile(p); }
  Status WriteFile(const std::string& p, std::string_view d) override { return target_->WriteFile(p, d); }
  Status CopyFile(const std::string& f, const std::string& t) override { return target_->CopyFile(f, t); }
  Status CreateDir(const std::string& p) override { return target_->CreateDir(p); }
  Status Rename(const std::string& f, const std::string& t) override { return target_->Rename(f, t); }
  Status RemoveAll(const std::string& p) override { return target_->RemoveAll(p); }
  Result<std::string> MakeTempDir(const std::string& parent, const std::string& prefix) override {
    return target_->MakeTempDir(parent, prefix);
  }

 private:
  FileSystem* target_;
};

// Writes `data` to a temporary sibling of `path`, then renames it over `path`: readers
// see the old content or the new, never a partial file.
Status WriteFileAtomic(FileSystem* fs, const std::string& path, std::string_view data);

// A file written in pieces that appears whole or not at all: the pieces go to a
// temporary sibling of `path`, which Commit() flushes and renames into place; destroyed
// without a successful Commit() (a failed run), it removes the temporary and leaves
// `path` as it was. An empty path or "-" is standard output, written as it comes.
class OutputFile {
 public:
  // IOError naming the path when the temporary cannot be created.
  static Result<OutputFile> Open(const std::string& path);
  OutputFile(OutputFile&& other) noexcept;
  OutputFile& operator=(OutputFile&&) = delete;
  ~OutputFile();

  Status Write(std::string_view data);
  Status Commit();
  // The path, or "stdout".
  const std::string& name() const { return name_; }

 private:
  OutputFile() = default;
  int fd_ = -1;
  std::string name_, path_, tmp_;
};

// Copies a file or a directory tree. `skip(name)` may exclude entries by base name
// (e.g. `__pycache__`). Symlinks are followed.
Status CopyTree(FileSystem* fs, const std::string& from, const std::string& to,
                const std::function<bool(const std::string&)>& skip = nullptr);

}  // namespace pyfunc

#endif  // PYFUNC_FILE_SYSTEM_H_
