// In-memory implementation of sealwal/env/file_system.h (see mem_file_system.h).
#include "sealwal/env/mem_file_system.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"

namespace sealwal::env {
namespace {

// Same errno -> code mapping as the POSIX implementation, so tests see the
// codes production code will see.
absl::Status ErrnoStatus(absl::string_view op, absl::string_view path, int err) {
  std::string msg = absl::StrCat(op, " ", path, ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(msg);
    case EEXIST:
      return absl::AlreadyExistsError(msg);
    case ENOSPC:
      return absl::ResourceExhaustedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

// An inode. Guarded by the file system's mutex; shared by the directory
// entry and every open file, so removing a name keeps open files working.
struct Node {
  explicit Node(bool dir, mode_t m) : is_dir(dir), mode(m) {}
  const bool is_dir;
  mode_t mode;
  std::string data;                                       // files
  std::map<std::string, std::shared_ptr<Node>> children;  // directories, sorted
  bool locked = false;                                    // files
};

class MemSequentialFile final : public SequentialFile {
 public:
  MemSequentialFile(absl::Mutex* mu, std::shared_ptr<Node> node)
      : mu_(mu), node_(std::move(node)) {}

  absl::StatusOr<size_t> Read(absl::Span<char> dst) override {
    absl::MutexLock lock(mu_);
    const std::string& data = node_->data;
    if (pos_ >= data.size()) return size_t{0};
    size_t n = std::min<uint64_t>(dst.size(), data.size() - pos_);
    std::memcpy(dst.data(), data.data() + pos_, n);
    pos_ += n;
    return n;
  }

  absl::Status Skip(uint64_t n) override {
    pos_ = (pos_ + n < pos_) ? UINT64_MAX : pos_ + n;  // saturate, never wrap
    return absl::OkStatus();
  }

 private:
  absl::Mutex* const mu_;
  const std::shared_ptr<Node> node_;
  uint64_t pos_ = 0;
};

class MemRandomAccessFile final : public RandomAccessFile {
 public:
  MemRandomAccessFile(absl::Mutex* mu, std::shared_ptr<Node> node)
      : mu_(mu), node_(std::move(node)) {}

  absl::StatusOr<size_t> ReadAt(uint64_t offset, absl::Span<char> dst) const override {
    absl::MutexLock lock(mu_);
    const std::string& data = node_->data;
    if (offset >= data.size()) return size_t{0};
    size_t n = std::min<uint64_t>(dst.size(), data.size() - offset);
    std::memcpy(dst.data(), data.data() + offset, n);
    return n;
  }

  absl::StatusOr<uint64_t> Size() const override {
    absl::MutexLock lock(mu_);
    return node_->data.size();
  }

 private:
  absl::Mutex* const mu_;
  const std::shared_ptr<Node> node_;
};

class MemWritableFile final : public WritableFile {
 public:
  MemWritableFile(absl::Mutex* mu, std::shared_ptr<Node> node, std::string path,
                  uint64_t pos, uint64_t max_size)
      : mu_(mu), node_(std::move(node)), path_(std::move(path)), pos_(pos),
        max_size_(max_size) {}

  absl::Status Append(absl::string_view data) override {
    if (!error_.ok()) return error_;
    if (data.empty()) return absl::OkStatus();
    uint64_t end = pos_ + data.size();
    if (end < pos_ || end > max_size_) return Fail(ErrnoStatus("write", path_, ENOSPC));
    absl::MutexLock lock(mu_);
    std::string& d = node_->data;
    // Writing past the end leaves a hole of zeros, as pwrite does.
    if (d.size() < end) d.resize(end);
    std::memcpy(d.data() + pos_, data.data(), data.size());
    pos_ = end;
    return absl::OkStatus();
  }

  absl::Status Flush() override { return error_; }
  absl::Status Sync() override { return error_; }

  absl::Status Fallocate(uint64_t offset, uint64_t len) override {
    if (!error_.ok()) return error_;
    uint64_t end = offset + len;
    if (end < offset || end > max_size_) return Fail(ErrnoStatus("fallocate", path_, ENOSPC));
    absl::MutexLock lock(mu_);
    if (node_->data.size() < end) node_->data.resize(end);
    return absl::OkStatus();
  }

  absl::Status Truncate(uint64_t size) override {
    if (!error_.ok()) return error_;
    if (size > max_size_) return Fail(ErrnoStatus("ftruncate", path_, ENOSPC));
    absl::MutexLock lock(mu_);
    node_->data.resize(size);
    if (size < node_->data.capacity() / 4) node_->data.shrink_to_fit();
    pos_ = std::min(pos_, size);
    return absl::OkStatus();
  }

  absl::Status Seek(uint64_t offset) override {
    if (!error_.ok()) return error_;
    pos_ = offset;
    return absl::OkStatus();
  }

  uint64_t Position() const override { return pos_; }

  absl::Status Close() override {
    if (!error_.ok()) return error_;
    error_ = absl::FailedPreconditionError("file closed: " + path_);
    return absl::OkStatus();
  }

 private:
  absl::Status Fail(absl::Status s) {
    if (error_.ok()) error_ = std::move(s);
    return error_;
  }

  absl::Mutex* const mu_;
  const std::shared_ptr<Node> node_;
  const std::string path_;
  uint64_t pos_;
  const uint64_t max_size_;
  absl::Status error_;  // sticky: the first failure, or "closed"
};

class MemFileLock final : public FileLock {
 public:
  MemFileLock(absl::Mutex* mu, std::shared_ptr<Node> node, std::string path)
      : mu_(mu), node_(std::move(node)), path_(std::move(path)) {}
  ~MemFileLock() override {
    absl::MutexLock lock(mu_);
    node_->locked = false;
  }
  const std::string& path() const override { return path_; }

 private:
  absl::Mutex* const mu_;
  const std::shared_ptr<Node> node_;
  const std::string path_;
};

class MemFileSystem final : public FileSystem {
 public:
  explicit MemFileSystem(const MemFileSystemOptions& options)
      : options_(options), root_(std::make_shared<Node>(/*dir=*/true, 0755)) {}

  absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) override {
    absl::MutexLock lock(&mu_);
    auto node = FindLocked(path, "open");
    if (!node.ok()) return node.status();
    if ((*node)->is_dir) return ErrnoStatus("read", path, EISDIR);
    return std::unique_ptr<SequentialFile>(new MemSequentialFile(&mu_, *std::move(node)));
  }

  absl::StatusOr<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) override {
    absl::MutexLock lock(&mu_);
    auto node = FindLocked(path, "open");
    if (!node.ok()) return node.status();
    if ((*node)->is_dir) return ErrnoStatus("read", path, EISDIR);
    return std::unique_ptr<RandomAccessFile>(new MemRandomAccessFile(&mu_, *std::move(node)));
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path, const WritableFileOptions& options) override {
    using D = WritableFileOptions::Disposition;
    absl::MutexLock lock(&mu_);
    auto entry = FindEntryLocked(path, "open");
    if (!entry.ok()) return entry.status();
    auto& [parent, name] = *entry;
    if (parent == nullptr) return ErrnoStatus("open", path, EISDIR);  // "/"
    auto it = parent->children.find(name);
    std::shared_ptr<Node> node;
    uint64_t pos = 0;
    if (it != parent->children.end()) {
      node = it->second;
      if (node->is_dir) return ErrnoStatus("open", path, EISDIR);
      switch (options.disposition) {
        case D::kCreateExclusive:
          return ErrnoStatus("open", path, EEXIST);
        case D::kCreateTruncate:
          node->data.clear();
          node->data.shrink_to_fit();
          break;
        case D::kOpenExisting:
          pos = options.offset;
          break;
      }
    } else {
      if (options.disposition == D::kOpenExisting) return ErrnoStatus("open", path, ENOENT);
      node = std::make_shared<Node>(/*dir=*/false, options.mode);
      parent->children.emplace(name, node);
    }
    return std::unique_ptr<WritableFile>(
        new MemWritableFile(&mu_, std::move(node), path, pos, options_.max_file_size));
  }

  absl::Status FileExists(const std::string& path) override {
    absl::MutexLock lock(&mu_);
    return FindLocked(path, "access").status();
  }

  absl::StatusOr<uint64_t> GetFileSize(const std::string& path) override {
    absl::MutexLock lock(&mu_);
    auto node = FindLocked(path, "stat");
    if (!node.ok()) return node.status();
    return (*node)->is_dir ? 0 : (*node)->data.size();
  }

  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) override {
    absl::MutexLock lock(&mu_);
    auto node = FindLocked(dir, "opendir");
    if (!node.ok()) return node.status();
    if (!(*node)->is_dir) return ErrnoStatus("opendir", dir, ENOTDIR);
    std::vector<std::string> names;
    names.reserve((*node)->children.size());
    for (const auto& [name, child] : (*node)->children) names.push_back(name);
    return names;  // std::map keeps them in byte order, like std::sort
  }

  absl::Status CreateDir(const std::string& dir, mode_t mode) override {
    absl::MutexLock lock(&mu_);
    auto entry = FindEntryLocked(dir, "mkdir");
    if (!entry.ok()) return entry.status();
    auto& [parent, name] = *entry;
    if (parent == nullptr || parent->children.contains(name)) {
      return ErrnoStatus("mkdir", dir, EEXIST);
    }
    parent->children.emplace(name, std::make_shared<Node>(/*dir=*/true, mode));
    return absl::OkStatus();
  }

  absl::Status RemoveDir(const std::string& dir) override {
    absl::MutexLock lock(&mu_);
    auto entry = FindEntryLocked(dir, "rmdir");
    if (!entry.ok()) return entry.status();
    auto& [parent, name] = *entry;
    if (parent == nullptr) return ErrnoStatus("rmdir", dir, EBUSY);
    auto it = parent->children.find(name);
    if (it == parent->children.end()) return ErrnoStatus("rmdir", dir, ENOENT);
    if (!it->second->is_dir) return ErrnoStatus("rmdir", dir, ENOTDIR);
    if (!it->second->children.empty()) return ErrnoStatus("rmdir", dir, ENOTEMPTY);
    parent->children.erase(it);
    return absl::OkStatus();
  }

  absl::Status RemoveFile(const std::string& path) override {
    absl::MutexLock lock(&mu_);
    auto entry = FindEntryLocked(path, "unlink");
    if (!entry.ok()) return entry.status();
    auto& [parent, name] = *entry;
    if (parent == nullptr) return ErrnoStatus("unlink", path, EISDIR);
    auto it = parent->children.find(name);
    if (it == parent->children.end()) return ErrnoStatus("unlink", path, ENOENT);
    if (it->second->is_dir) return ErrnoStatus("unlink", path, EISDIR);
    parent->children.erase(it);  // open files keep the inode alive
    return absl::OkStatus();
  }

  absl::Status Rename(const std::string& from, const std::string& to) override {
    const std::string what = absl::StrCat(from, " -> ", to);
    absl::MutexLock lock(&mu_);
    std::vector<Node*> to_chain;  // every directory on the way to `to`
    auto src = FindEntryLocked(from, "rename");
    if (!src.ok()) return ErrnoStatus("rename", what, ENOENT);
    auto dst = FindEntryLocked(to, "rename", &to_chain);
    if (!dst.ok()) return ErrnoStatus("rename", what, ENOENT);
    auto& [src_parent, src_name] = *src;
    auto& [dst_parent, dst_name] = *dst;
    if (src_parent == nullptr || dst_parent == nullptr) return ErrnoStatus("rename", what, EBUSY);
    auto src_it = src_parent->children.find(src_name);
    if (src_it == src_parent->children.end()) return ErrnoStatus("rename", what, ENOENT);
    std::shared_ptr<Node> node = src_it->second;
    if (src_parent == dst_parent && src_name == dst_name) return absl::OkStatus();
    // A directory cannot move into its own subtree.
    if (node->is_dir && std::find(to_chain.begin(), to_chain.end(), node.get()) != to_chain.end()) {
      return ErrnoStatus("rename", what, EINVAL);
    }
    auto dst_it = dst_parent->children.find(dst_name);
    if (dst_it != dst_parent->children.end()) {
      const Node& old = *dst_it->second;
      if (!node->is_dir && old.is_dir) return ErrnoStatus("rename", what, EISDIR);
      if (node->is_dir && !old.is_dir) return ErrnoStatus("rename", what, ENOTDIR);
      if (old.is_dir && !old.children.empty()) return ErrnoStatus("rename", what, ENOTEMPTY);
    }
    src_parent->children.erase(src_it);
    dst_parent->children[dst_name] = std::move(node);
    return absl::OkStatus();
  }

  absl::Status SyncDir(const std::string& dir) override {
    absl::MutexLock lock(&mu_);
    auto node = FindLocked(dir, "open");
    if (!node.ok()) return node.status();
    if (!(*node)->is_dir) return ErrnoStatus("open", dir, ENOTDIR);
    return absl::OkStatus();  // memory is "durable" already
  }

  absl::StatusOr<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    absl::MutexLock lock(&mu_);
    auto node = FindLocked(path, "open");
    if (!node.ok()) return node.status();
    if ((*node)->is_dir) return ErrnoStatus("open", path, EISDIR);
    if ((*node)->locked) {
      return absl::UnavailableError(
          absl::StrCat("lock ", path, ": held by another process or handle"));
    }
    (*node)->locked = true;
    return std::unique_ptr<FileLock>(new MemFileLock(&mu_, *std::move(node), path));
  }

 private:
  // The components of path: empty and "." dropped, ".." pops one.
  static absl::StatusOr<std::vector<std::string>> Split(const std::string& path,
                                                         absl::string_view op) {
    if (path.empty()) return ErrnoStatus(op, path, ENOENT);
    std::vector<std::string> parts;
    for (absl::string_view c : absl::StrSplit(path, '/', absl::SkipEmpty())) {
      if (c == ".") continue;
      if (c == "..") {
        if (!parts.empty()) parts.pop_back();
        continue;
      }
      parts.emplace_back(c);
    }
    return parts;
  }

  // Walks to the directory holding the last component of path. Returns
  // {nullptr, ""} for "/" itself. `chain` receives every directory passed.
  absl::StatusOr<std::pair<Node*, std::string>> FindEntryLocked(
      const std::string& path, absl::string_view op, std::vector<Node*>* chain = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto parts = Split(path, op);
    if (!parts.ok()) return parts.status();
    if (parts->empty()) return std::pair<Node*, std::string>(nullptr, "");
    Node* dir = root_.get();
    if (chain != nullptr) chain->push_back(dir);
    for (size_t i = 0; i + 1 < parts->size(); ++i) {
      auto it = dir->children.find((*parts)[i]);
      if (it == dir->children.end()) return ErrnoStatus(op, path, ENOENT);
      if (!it->second->is_dir) return ErrnoStatus(op, path, ENOTDIR);
      dir = it->second.get();
      if (chain != nullptr) chain->push_back(dir);
    }
    return std::pair<Node*, std::string>(dir, std::move(parts->back()));
  }

  absl::StatusOr<std::shared_ptr<Node>> FindLocked(const std::string& path, absl::string_view op)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto entry = FindEntryLocked(path, op);
    if (!entry.ok()) return entry.status();
    if (entry->first == nullptr) return root_;
    auto it = entry->first->children.find(entry->second);
    if (it == entry->first->children.end()) return ErrnoStatus(op, path, ENOENT);
    return it->second;
  }

  const MemFileSystemOptions options_;
  absl::Mutex mu_;  // guards the whole tree and every Node in it
  const std::shared_ptr<Node> root_;
};

}  // namespace

std::unique_ptr<FileSystem> NewMemFileSystem() { return NewMemFileSystem(MemFileSystemOptions{}); }

std::unique_ptr<FileSystem> NewMemFileSystem(const MemFileSystemOptions& options) {
  return std::make_unique<MemFileSystem>(options);
}

}  // namespace sealwal::env
