// safetensors files: the checkpoint format of every model (readable by numpy and PyTorch).
//
// Layout, byte by byte:
//   bytes 0..7     N, the header length, unsigned 64-bit little-endian
//   bytes 8..8+N   the header: UTF-8 JSON, an object with one entry per tensor
//                    "name": {"dtype": "F32", "shape": [3, 4], "data_offsets": [begin, end]}
//                  and optionally "__metadata__": {"key": "string value", ...};
//                  padded with spaces to a multiple of 8 bytes
//   bytes 8+N..    the data section; each tensor's bytes are [begin, end) of it, little-endian,
//                  row-major. Tensors are contiguous, in order, and cover the whole section.
//
// The reader trusts nothing: the header length is capped and must fit in the file; the JSON
// must parse; names must be unique; dtypes known; shapes non-negative with a product that fits
// 64 bits and matches the byte range; ranges contiguous and inside the file. Only then is data
// read.
//
//   gen::SafetensorsWriter w;
//   w.metadata["format"] = "gen-gpt";
//   w.add("wte", gen::Dtype::F32, {65, 128}, bytes);     // copies the bytes
//   w.write(out);
//   gen::Safetensors st = gen::Safetensors::read("lm.st");
//   const gen::Safetensors::Entry& e = st.get("wte");    // throws Error naming file and tensor
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/files.h"

namespace gen {

enum class Dtype { F32, F64, I32, I64, U8, U32, U64 };
const char* dtype_name(Dtype dtype);
size_t dtype_size(Dtype dtype);

class SafetensorsWriter {
 public:
  std::map<std::string, std::string> metadata;
  // Copies of bytes, of data.
  void add(std::string name, Dtype dtype, std::vector<int64_t> shape, std::string_view bytes);
  void add_f32(std::string name, std::vector<int64_t> shape, const float* data);
  // Borrows data, not copied (a checkpoint's tensors are written straight from the model's and
  // the optimizer's buffers), which must stay alive and unchanged until write() or save().
  void add_f32_borrowed(std::string name, std::vector<int64_t> shape, const float* data);
  void write(Output& out) const;
  // Writes the file at path atomically (io/files.h's Output: complete or not at all).
  void save(const std::string& path) const;

 private:
  struct Item {
    std::string name;
    Dtype dtype;
    std::vector<int64_t> shape;
    std::string owned;              // add()'s copy
    const char* borrowed = nullptr;  // or add_f32()'s data
    size_t size = 0;
    std::string_view bytes() const { return borrowed ? std::string_view(borrowed, size) : std::string_view(owned); }
  };
  std::vector<Item> items_;
};

class Safetensors {
 public:
  struct Entry {
    std::string name;
    Dtype dtype;
    std::vector<int64_t> shape;
    uint64_t offset = 0, size = 0;  // the bytes' place in the file
    int64_t count() const;
  };

  // The header is read and checked at once; a regular file's tensors are read (pread) only when
  // asked for, so a sampler skips a checkpoint's optimizer state. Not mapped: a file cut short
  // while it is read gives an Error naming it, never SIGBUS.
  static Safetensors read(const std::string& path, size_t max_bytes = size_t{4} << 30);
  static Safetensors parse(std::string contents, std::string name);
  Safetensors(Safetensors&&) noexcept = default;
  Safetensors& operator=(Safetensors&&) noexcept = default;
  Safetensors(const Safetensors&) = delete;

  const std::string& name() const { return name_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The metadata value, or throws Error("FILE", "no metadata 'key'").
  const std::string& meta(const std::string& key) const;
  bool has(const std::string& tensor) const;
  const Entry& get(const std::string& tensor) const;
  // The tensor, checked to be F32 of this shape (Error naming the file and the tensor otherwise).
  const Entry& check_f32(const std::string& tensor, const std::vector<int64_t>& shape) const;
  // The same, then copied into out (count floats).
  void read_f32(const std::string& tensor, const std::vector<int64_t>& shape, float* out) const;
  // A tensor's bytes, copied.
  std::string bytes(const Entry& entry) const;
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  Safetensors() = default;
  std::string name_;
  struct Source;
  static Safetensors from(std::shared_ptr<const Source> source);
  std::shared_ptr<const Source> source_;  // where the entries' bytes are
  std::map<std::string, std::string> metadata_;
  std::vector<Entry> entries_;
};

}  // namespace gen
