#include "pyfunc/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "base/posix_error.h"

namespace pyfunc {
namespace {

using base::PosixError;

Status WriteAll(int fd, const char* data, size_t size, const std::string& path) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return PosixError(path, errno);
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return Status::OK();
}

class PosixFileSystem final : public FileSystem {
 public:
  bool Exists(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  }

  bool IsDirectory(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  }

  Result<std::vector<std::string>> ListDir(const std::string& path) override {
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) return PosixError(path, errno);
    std::vector<std::string> names;
    while (dirent* entry = ::readdir(dir)) {
      std::string name = entry->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    ::closedir(dir);
    std::sort(names.begin(), names.end());
    return names;
  }

  Result<std::string> ReadFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return PosixError(path, errno);
    std::string out;
    char buf[1 << 16];
    while (true) {
      ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        ::close(fd);
        return PosixError(path, err);
      }
      if (n == 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
  }

  Status WriteFile(const std::string& path, std::string_view data) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return PosixError(path, errno);
    Status st = WriteAll(fd, data.data(), data.size(), path);
    if (st.ok() && ::fsync(fd) != 0) st = PosixError(path, errno);
    if (::close(fd) != 0 && st.ok()) st = PosixError(path, errno);
    return st;
  }

  Status CopyFile(const std::string& from, const std::string& to) override {
    int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) return PosixError(from, errno);
    struct stat st;
    ::fstat(in, &st);
    int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 0777);
    if (out < 0) {
      int err = errno;
      ::close(in);
      return PosixError(to, err);
    }
    Status status;
    char buf[1 << 16];
    while (status.ok()) {
      ssize_t n = ::read(in, buf, sizeof(buf));
      if (n < 0) {
        if (errno == EINTR) continue;
        status = PosixError(from, errno);
        break;
      }
      if (n == 0) break;
      status = WriteAll(out, buf, static_cast<size_t>(n), to);
    }
    ::close(in);
    if (::close(out) != 0 && status.ok()) status = PosixError(to, errno);
    return status;
  }

  Status CreateDir(const std::string& path) override {
    if (::mkdir(path.c_str(), 0755) != 0) return PosixError(path, errno);
    return Status::OK();
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return PosixError("rename " + from + " -> " + to, errno);
    return Status::OK();
  }

  Status RemoveAll(const std::string& path) override {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    if (ec) return Status::IOError(path + ": " + ec.message());
    return Status::OK();
  }

  Result<std::string> MakeTempDir(const std::string& parent, const std::string& prefix) override {
    std::string templ = (parent.empty() ? std::string(".") : parent) + "/" + prefix + "XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) return PosixError(templ, errno);
    return std::string(buf.data());
  }
};

}  // namespace

FileSystem* FileSystem::Default() {
  static PosixFileSystem* fs = new PosixFileSystem();
  return fs;
}

Result<OutputFile> OutputFile::Open(const std::string& path) {
  OutputFile out;
  if (path.empty() || path == "-") {
    out.fd_ = 1;
    out.name_ = "stdout";
    return out;
  }
  std::filesystem::path p(path);
  out.name_ = out.path_ = path;
  out.tmp_ = (p.parent_path() / ("." + p.filename().string() + ".partial-" + std::to_string(::getpid()))).string();
  out.fd_ = ::open(out.tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out.fd_ < 0) return base::PosixError(path + ": cannot write");
  return out;
}

OutputFile::OutputFile(OutputFile&& o) noexcept
    : fd_(o.fd_), name_(std::move(o.name_)), path_(std::move(o.path_)), tmp_(std::move(o.tmp_)) {
  o.fd_ = -1;
}

OutputFile::~OutputFile() {
  if (fd_ > 2) {
    ::close(fd_);
    ::unlink(tmp_.c_str());  // not committed: leave nothing behind
  }
}

Status OutputFile::Write(std::string_view data) {
  if (fd_ < 0) return Status::Internal(name_ + ": written after Commit");
  while (!data.empty()) {
    ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return base::PosixError(name_);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::OK();
}

Status OutputFile::Commit() {
  if (fd_ >= 0 && fd_ <= 2) return Status::OK();
  if (fd_ < 0) return Status::Internal(name_ + ": committed twice");
  const int fd = fd_;
  fd_ = -1;
  int err = ::fsync(fd) == 0 ? 0 : errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err != 0) {
    ::unlink(tmp_.c_str());
    return base::PosixError(path_, err);
  }
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp_.c_str());
    return base::PosixError(path_, err);
  }
  return Status::OK();
}

Status WriteFileAtomic(FileSystem* fs, const std::string& path, std::string_view data) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  const std::filesystem::path p(path);
  const std::string tmp =
      (p.parent_path() / ("." + p.filename().string() + ".tmp-" + std::to_string(rng() % 1000000000))).string();
  Status st = fs->WriteFile(tmp, data);
  if (st.ok()) st = fs->Rename(tmp, path);
  if (!st.ok()) (void)fs->RemoveAll(tmp);
  return st;
}

Status CopyTree(FileSystem* fs, const std::string& from, const std::string& to,
                const std::function<bool(const std::string&)>& skip) {
  if (!fs->Exists(from)) return Status::NotFound(from + ": no such file or directory");
  if (!fs->IsDirectory(from)) return fs->CopyFile(from, to);
  PYFUNC_RETURN_IF_ERROR(fs->CreateDir(to));
  PYFUNC_ASSIGN_OR_RETURN(std::vector<std::string> names, fs->ListDir(from));
  for (const std::string& name : names) {
    if (skip && skip(name)) continue;
    PYFUNC_RETURN_IF_ERROR(CopyTree(fs, from + "/" + name, to + "/" + name, skip));
  }
  return Status::OK();
}

}  // namespace pyfunc
