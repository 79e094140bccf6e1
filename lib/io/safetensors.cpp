#include "io/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace gen {
namespace {

constexpr uint64_t kMaxHeader = uint64_t{100} << 20;  // as the reference implementation

struct DtypeInfo {
  Dtype dtype;
  const char* name;
  size_t size;
};
constexpr DtypeInfo kDtypes[] = {{Dtype::F32, "F32", 4}, {Dtype::F64, "F64", 8}, {Dtype::I32, "I32", 4},
                                 {Dtype::I64, "I64", 8}, {Dtype::U8, "U8", 1},   {Dtype::U32, "U32", 4},
                                 {Dtype::U64, "U64", 8}};

std::string shape_text(const std::vector<int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

}  // namespace

const char* dtype_name(Dtype dtype) {
  for (const auto& info : kDtypes)
    if (info.dtype == dtype) return info.name;
  return "?";
}

size_t dtype_size(Dtype dtype) {
  for (const auto& info : kDtypes)
    if (info.dtype == dtype) return info.size;
  return 0;
}

int64_t Safetensors::Entry::count() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

void SafetensorsWriter::add(std::string name, Dtype dtype, std::vector<int64_t> shape, std::string_view bytes) {
  items_.push_back({std::move(name), dtype, std::move(shape), std::string(bytes), nullptr, bytes.size()});
}

void SafetensorsWriter::add_f32(std::string name, std::vector<int64_t> shape, const float* data) {
  add_f32_borrowed(std::move(name), std::move(shape), data);
  Item& item = items_.back();
  item.owned.assign(item.borrowed, item.size);
  item.borrowed = nullptr;
}

void SafetensorsWriter::add_f32_borrowed(std::string name, std::vector<int64_t> shape, const float* data) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  items_.push_back({std::move(name), Dtype::F32, std::move(shape), {}, reinterpret_cast<const char*>(data),
                    static_cast<size_t>(n) * sizeof(float)});
}

void SafetensorsWriter::save(const std::string& path) const {
  Output out(path);
  write(out);
  out.commit();
}

void SafetensorsWriter::write(Output& out) const {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& item : items_) {
    header[item.name] = {{"dtype", dtype_name(item.dtype)},
                         {"shape", item.shape},
                         {"data_offsets", {offset, offset + item.size}}};
    offset += item.size;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  uint64_t length = text.size();
  char prefix[8];
  std::memcpy(prefix, &length, 8);  // little-endian host
  out.write(prefix, 8);
  out.write(text);
  for (const auto& item : items_) out.write(item.bytes());
}

// Where a file's bytes are: in memory (stdin, a pipe, a fuzzer's input), or in an open regular
// file read with pread as they are asked for. A file cut short under the reader (truncated in
// place) makes pread come back short: an Error naming the file, where a mapping would be SIGBUS.
struct Safetensors::Source {
  std::string memory;
  int fd = -1;
  uint64_t size = 0;
  std::string name;
  ~Source() {
    if (fd >= 0) ::close(fd);
  }
  void copy(uint64_t offset, uint64_t n, char* to) const {
    if (fd < 0) {
      std::memcpy(to, memory.data() + offset, n);
      return;
    }
    while (n > 0) {
      const ssize_t got = ::pread(fd, to, std::min<uint64_t>(n, uint64_t{1} << 30), static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) throw Error(name, fmt::format("cannot read: {}", std::strerror(errno)));
      if (got == 0)
        throw Error(name, fmt::format("changed while being read: it ends at byte {} of the {} it had", offset, size));
      to += got, offset += static_cast<uint64_t>(got), n -= static_cast<uint64_t>(got);
    }
  }
};

Safetensors Safetensors::read(const std::string& path, size_t max_bytes) {
  if (path != "-") {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      auto source = std::make_shared<Source>();
      source->fd = fd;
      source->name = path;
      struct stat info;
      if (fstat(fd, &info) == 0 && S_ISREG(info.st_mode) && info.st_size > 0 &&
          static_cast<uint64_t>(info.st_size) <= max_bytes) {
        source->size = static_cast<uint64_t>(info.st_size);
        return from(std::move(source));
      }
    }
  }
  // Standard input, a pipe, or a file that cannot be read in place: read it all (read_file says
  // what is wrong).
  return parse(read_file(path, max_bytes), path);
}

Safetensors Safetensors::parse(std::string contents, std::string name) {
  auto source = std::make_shared<Source>();
  source->size = contents.size();
  source->memory = std::move(contents);
  source->name = std::move(name);
  return from(std::move(source));
}

Safetensors Safetensors::from(std::shared_ptr<const Source> source) {
  Safetensors st;
  st.name_ = source->name;
  st.source_ = source;
  const std::string& file = st.name_;
  const uint64_t size = source->size;
  auto fail = [&](const std::string& reason) { return Error(file, "not a valid safetensors file: " + reason); };
  if (size < 8) throw fail(fmt::format("{} bytes is too short for the header length", size));
  uint64_t header_length;
  source->copy(0, 8, reinterpret_cast<char*>(&header_length));  // little-endian host
  if (header_length > kMaxHeader) throw fail(fmt::format("header length {} is over the limit", header_length));
  if (header_length > size - 8)
    throw fail(fmt::format("header length {} runs past the end of the file ({} bytes)", header_length, size));
  std::string header_text(header_length, '\0');
  source->copy(8, header_length, header_text.data());
  const uint64_t data_begin = 8 + header_length;
  const uint64_t data_size = size - data_begin;

  // Parse, rejecting duplicate names (a plain parse would keep the last silently).
  std::set<std::string> keys;
  std::string duplicate;
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(
        header_text, [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
          if (depth == 1 && event == nlohmann::json::parse_event_t::key && duplicate.empty()) {
            std::string key = parsed.get<std::string>();
            if (!keys.insert(key).second) duplicate = key;
          }
          return true;
        });
  } catch (const nlohmann::json::exception& e) {
    throw fail(fmt::format("the header is not JSON ({})", e.what()));
  }
  if (!duplicate.empty()) throw fail(fmt::format("tensor '{}' appears twice", duplicate));
  if (!header.is_object()) throw fail("the header is not a JSON object");

  for (auto& item : header.items()) {
    const std::string& key = item.key();
    auto& value = item.value();
    if (key == "__metadata__") {
      if (!value.is_object()) throw fail("__metadata__ is not an object");
      for (auto& [meta_key, meta_value] : value.items()) {
        if (!meta_value.is_string()) throw fail(fmt::format("metadata '{}' is not a string", meta_key));
        st.metadata_[meta_key] = meta_value.get<std::string>();
      }
      continue;
    }
    auto bad = [&](const std::string& reason) { return fail(fmt::format("tensor '{}': {}", key, reason)); };
    if (!value.is_object()) throw bad("not an object");
    if (!value.contains("dtype") || !value["dtype"].is_string()) throw bad("no dtype");
    if (!value.contains("shape") || !value["shape"].is_array()) throw bad("no shape");
    if (!value.contains("data_offsets") || !value["data_offsets"].is_array() || value["data_offsets"].size() != 2)
      throw bad("no data_offsets [begin, end]");
    Entry entry;
    entry.name = key;
    std::string dtype = value["dtype"].get<std::string>();
    const DtypeInfo* info = nullptr;
    for (const auto& candidate : kDtypes)
      if (dtype == candidate.name) info = &candidate;
    if (!info) throw bad(fmt::format("unsupported dtype '{}'", dtype));
    entry.dtype = info->dtype;
    uint64_t count = 1;
    for (const auto& d : value["shape"]) {
      if (!d.is_number_unsigned()) throw bad("a dimension is not a non-negative integer");
      uint64_t dim = d.get<uint64_t>();
      if (dim > (uint64_t{1} << 40) || (dim != 0 && count > (uint64_t{1} << 50) / dim)) throw bad("shape too large");
      count *= dim;
      entry.shape.push_back(static_cast<int64_t>(dim));
    }
    const auto& offsets = value["data_offsets"];
    if (!offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned()) throw bad("data_offsets are not integers");
    uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
    if (begin > end || end > data_size)
      throw bad(fmt::format("data_offsets [{}, {}] are outside the data section of {} bytes", begin, end, data_size));
    if (end - begin != count * info->size)
      throw bad(fmt::format("shape {} of {} needs {} bytes, data_offsets give {}", shape_text(entry.shape), dtype,
                            count * info->size, end - begin));
    entry.offset = data_begin + begin;
    entry.size = end - begin;
    st.entries_.push_back(std::move(entry));
  }
  // Contiguous and covering: sorted by begin, each starts where the last ended.
  std::sort(st.entries_.begin(), st.entries_.end(), [](const Entry& a, const Entry& b) { return a.offset < b.offset; });
  uint64_t expected = 0;
  for (const auto& entry : st.entries_) {
    const uint64_t begin = entry.offset - data_begin;
    if (begin != expected) throw fail(fmt::format("tensor '{}' does not start where the one before it ends", entry.name));
    expected = begin + entry.size;
  }
  if (expected != data_size) throw fail(fmt::format("{} bytes after the last tensor", data_size - expected));
  return st;
}

const std::string& Safetensors::meta(const std::string& key) const {
  auto found = metadata_.find(key);
  if (found == metadata_.end()) throw Error(name_, fmt::format("no metadata '{}'", key));
  return found->second;
}

bool Safetensors::has(const std::string& tensor) const {
  return std::any_of(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.name == tensor; });
}

const Safetensors::Entry& Safetensors::get(const std::string& tensor) const {
  for (const auto& entry : entries_)
    if (entry.name == tensor) return entry;
  throw Error(name_, fmt::format("no tensor '{}'", tensor));
}

const Safetensors::Entry& Safetensors::check_f32(const std::string& tensor, const std::vector<int64_t>& shape) const {
  const Entry& entry = get(tensor);
  if (entry.dtype != Dtype::F32)
    throw Error(name_, fmt::format("tensor '{}' is {}, expected F32", tensor, dtype_name(entry.dtype)));
  if (entry.shape != shape)
    throw Error(name_, fmt::format("tensor '{}' has shape {}, expected {}", tensor, shape_text(entry.shape),
                                   shape_text(shape)));
  return entry;
}

void Safetensors::read_f32(const std::string& tensor, const std::vector<int64_t>& shape, float* out) const {
  const Entry& entry = check_f32(tensor, shape);
  source_->copy(entry.offset, entry.size, reinterpret_cast<char*>(out));
}

std::string Safetensors::bytes(const Entry& entry) const {
  std::string out(entry.size, '\0');
  source_->copy(entry.offset, entry.size, out.data());
  return out;
}

}  // namespace gen
