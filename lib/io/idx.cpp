#include "io/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstring>
#include <filesystem>
#include <new>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "core/files.h"

namespace gen {
namespace {

bool is_gzip(std::string_view bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b;
}

// Inflates gzip data as it is read, so that a reader can stop as soon as it has what it needs.
class GzipSource : public ByteSource {
 public:
  GzipSource(std::string_view bytes, std::string name) : bytes_(bytes), name_(std::move(name)) {
    int rc = inflateInit2(&stream_, 16 + MAX_WBITS);  // 16: gzip wrapper only
    if (rc == Z_MEM_ERROR) throw std::bad_alloc();
    if (rc != Z_OK) throw Error(name_, "cannot start zlib");
    feed(0);
  }
  ~GzipSource() override { inflateEnd(&stream_); }
  GzipSource(const GzipSource&) = delete;
  GzipSource& operator=(const GzipSource&) = delete;

  const std::string& name() const override { return name_; }

  size_t read(char* data, size_t n) override {
    if (done_ || n == 0) return 0;
    stream_.next_out = reinterpret_cast<Bytef*>(data);
    stream_.avail_out = static_cast<uInt>(std::min<size_t>(n, UINT_MAX));
    const uInt wanted = stream_.avail_out;
    while (stream_.avail_out > 0) {
      if (stream_.avail_in == 0) feed(consumed());
      int rc = inflate(&stream_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        // Another member may follow (cat a.gz b.gz); anything else is damage.
        size_t at = consumed();
        if (at == bytes_.size()) {
          done_ = true;
          break;
        }
        if (!is_gzip(bytes_.substr(at)))
          throw Error(name_, fmt::format("{} bytes of garbage after the gzip data", bytes_.size() - at));
        if (inflateReset(&stream_) != Z_OK) throw Error(name_, "cannot restart zlib");
        feed(at);
        continue;
      }
      if (rc == Z_MEM_ERROR) throw std::bad_alloc();
      if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT || rc == Z_STREAM_ERROR)
        throw Error(name_, fmt::format("corrupt gzip data ({})", stream_.msg ? stream_.msg : "zlib error"));
      if (rc == Z_BUF_ERROR && stream_.avail_in == 0 && consumed() == bytes_.size())
        throw Error(name_, "truncated gzip data (the file ends inside the compressed stream)");
    }
    return wanted - stream_.avail_out;
  }

 private:
  size_t consumed() const {
    return static_cast<size_t>(stream_.next_in - reinterpret_cast<const Bytef*>(bytes_.data()));
  }
  void feed(size_t at) {
    stream_.next_in = const_cast<Bytef*>(reinterpret_cast<const Bytef*>(bytes_.data() + at));  // zlib only reads it
    stream_.avail_in = static_cast<uInt>(std::min<size_t>(bytes_.size() - at, UINT_MAX));
  }

  std::string_view bytes_;
  std::string name_;
  z_stream stream_{};
  bool done_ = false;
};

// Up to n bytes, fewer only at the end of the source.
size_t read_up_to(ByteSource& source, char* data, size_t n) {
  size_t got = 0;
  while (got < n) {
    size_t k = source.read(data + got, n - got);
    if (k == 0) break;
    got += k;
  }
  return got;
}

uint32_t be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// known_size: the whole (uncompressed) input's length when it is known, for exact messages.
IdxArray read_idx_from(ByteSource& source, const std::string& name, size_t max_bytes, int64_t known_size) {
  unsigned char head[4];
  size_t got = read_up_to(source, reinterpret_cast<char*>(head), 4);
  if (got < 4) throw Error(name, fmt::format("not an IDX file: {} bytes is too short for the header", got));
  const uint32_t magic = be32(head);
  if (head[0] != 0 || head[1] != 0)
    throw Error(name,
                fmt::format("not an IDX file (magic 0x{:08x}; 0x00000803 for images, 0x00000801 for labels)", magic));
  if (head[2] != 0x08)
    throw Error(name, fmt::format("IDX element type 0x{:02x} is not supported (only unsigned bytes, 0x08)", head[2]));
  const int ndims = head[3];
  if (ndims < 1 || ndims > 4) throw Error(name, fmt::format("IDX file with {} dimensions (1 to 4 supported)", ndims));
  unsigned char raw[16];
  got = read_up_to(source, reinterpret_cast<char*>(raw), 4 * ndims);
  if (got < static_cast<size_t>(4 * ndims))
    throw Error(name,
                fmt::format("truncated IDX header: {} dimensions need {} bytes, found {}", ndims, 4 * ndims, got));
  IdxArray array;
  uint64_t total = 1;
  bool over = false;
  for (int i = 0; i < ndims; ++i) {
    uint32_t dim = be32(raw + 4 * i);
    array.dims.push_back(dim);
    if (dim != 0 && total > max_bytes / dim) over = true;  // checked before multiplying: no overflow
    if (!over) total *= dim;
  }
  const std::string shape = fmt::format("{}", fmt::join(array.dims, "x"));
  if (over) throw Error(name, fmt::format("IDX dimensions {} are over the limit of {} bytes", shape, max_bytes));

  // Grow with the data actually there, not with what the header claims: a short file that
  // declares a gigabyte allocates only what it holds.
  const size_t header = 4 + 4 * static_cast<size_t>(ndims);
  size_t have = 0;
  while (have < total) {
    size_t next = std::min<size_t>(total, std::max<size_t>(size_t{1} << 20, have * 2));
    array.data.resize(next);
    size_t k = read_up_to(source, reinterpret_cast<char*>(array.data.data() + have), next - have);
    have += k;
    if (have < next) break;
  }
  if (have < total) {
    if (known_size >= 0)
      throw Error(name, fmt::format("truncated IDX file: dimensions {} need {} bytes of data, the file has {}", shape,
                                    total, have));
    throw Error(name, fmt::format("truncated IDX data: dimensions {} need {} bytes, the data ends after {}", shape,
                                  total, have));
  }
  char extra;
  if (read_up_to(source, &extra, 1) != 0) {
    if (known_size >= 0)
      throw Error(name, fmt::format("{} bytes after the {} bytes of data that dimensions {} call for",
                                    static_cast<uint64_t>(known_size) - header - total, total, shape));
    throw Error(name, fmt::format("more data than the {} bytes that dimensions {} call for", total, shape));
  }
  return array;
}

std::string dims_text(const IdxArray& array) {
  return fmt::format("{} dimension{} ({})", array.dims.size(), array.dims.size() == 1 ? "" : "s",
                     fmt::join(array.dims, "x"));
}

std::string normalized(std::string_view text) {
  std::string out;
  for (char c : text)
    if (std::isalnum(static_cast<unsigned char>(c)))
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::string gunzip(std::string_view bytes, const std::string& name, size_t max_bytes) {
  if (!is_gzip(bytes)) throw Error(name, "not gzip data (no 1f 8b magic)");
  GzipSource source(bytes, name);
  std::string out;
  size_t have = 0;
  for (;;) {
    // One byte past the limit tells "exactly max_bytes" from "more".
    size_t next = std::min<size_t>(max_bytes == SIZE_MAX ? max_bytes : max_bytes + 1,
                                   std::max<size_t>(size_t{1} << 16, have * 2));
    out.resize(next);
    size_t k = read_up_to(source, out.data() + have, next - have);
    have += k;
    if (have > max_bytes)
      throw Error(name, fmt::format("gzip data inflates to more than the limit of {} bytes", max_bytes));
    if (have < next) break;
  }
  out.resize(have);
  return out;
}

IdxArray parse_idx(std::string_view bytes, const std::string& name, size_t max_bytes) {
  if (is_gzip(bytes)) {
    GzipSource source(bytes, name);
    return read_idx_from(source, name, max_bytes, -1);
  }
  MemorySource source(bytes, name);
  return read_idx_from(source, name, max_bytes, static_cast<int64_t>(bytes.size()));
}

IdxArray read_idx(const std::string& path, size_t max_bytes) {
  // The compressed file is smaller than its contents, but leave room for incompressible data.
  const size_t file_limit = max_bytes > SIZE_MAX / 2 ? max_bytes : max_bytes + max_bytes / 64 + 4096;
  return parse_idx(read_file(path, file_limit), path, max_bytes);
}

Image Dataset::image(int i) const {
  Image out(width, height, channels);
  std::memcpy(out.pixels.data(), image_data(i), image_size());
  return out;
}

Dataset load_idx_pair(const std::string& images_path, const std::string& labels_path, int num_classes,
                      size_t max_bytes) {
  if (num_classes < 1 || num_classes > 256)
    throw Error(labels_path, fmt::format("{} classes: 1 to 256 are possible with byte labels", num_classes));
  // Labels first: the small file fails fast before the large one is inflated.
  IdxArray labels = read_idx(labels_path, max_bytes);
  if (labels.dims.size() != 1)
    throw Error(labels_path, fmt::format("expected labels (magic 0x00000801: count), found {}", dims_text(labels)));
  IdxArray images = read_idx(images_path, max_bytes);
  if (images.dims.size() != 3)
    throw Error(images_path,
                fmt::format("expected images (magic 0x00000803: count, rows, columns), found {}", dims_text(images)));
  const uint32_t count = images.dims[0], rows = images.dims[1], cols = images.dims[2];
  if (count == 0) throw Error(images_path, "holds no images");
  if (rows == 0 || cols == 0) throw Error(images_path, fmt::format("images of {}x{} pixels", rows, cols));
  if (count > INT_MAX || rows > INT_MAX || cols > INT_MAX)
    throw Error(images_path, fmt::format("dimensions {} are too large", dims_text(images)));
  if (labels.dims[0] != count)
    throw Error(labels_path, fmt::format("{} labels for the {} images of {}", labels.dims[0], count, images_path));
  for (uint32_t i = 0; i < count; ++i)
    if (labels.data[i] >= num_classes)
      throw Error(labels_path, fmt::format("label {} of item {} is not below the number of classes, {}", labels.data[i],
                                           i, num_classes));
  Dataset set;
  set.count = static_cast<int>(count);
  set.height = static_cast<int>(rows);
  set.width = static_cast<int>(cols);
  set.channels = 1;
  set.images = std::move(images.data);
  set.labels = std::move(labels.data);
  return set;
}

Dataset load_fashion_mnist(bool train, const std::string& dir) {
  const std::string prefix = dir + "/" + (train ? "train" : "t10k");
  auto locate = [&](const std::string& base) {
    for (const std::string& candidate : {base + ".gz", base})
      if (std::filesystem::exists(candidate)) return candidate;
    throw Error(base + ".gz",
                "not found: Fashion-MNIST comes with Debian's dataset-fashion-mnist (scripts/install-deps.sh)");
  };
  std::string images = locate(prefix + "-images-idx3-ubyte");
  std::string labels = locate(prefix + "-labels-idx1-ubyte");
  return load_idx_pair(images, labels, static_cast<int>(kFashionMnistClasses.size()));
}

int fashion_mnist_class(std::string_view name) {
  const std::string wanted = normalized(name);
  if (wanted.empty()) return -1;
  for (size_t i = 0; i < kFashionMnistClasses.size(); ++i) {
    std::string_view full = kFashionMnistClasses[i];
    if (normalized(full) == wanted) return static_cast<int>(i);
    size_t slash = full.find('/');
    if (slash != std::string_view::npos &&
        (normalized(full.substr(0, slash)) == wanted || normalized(full.substr(slash + 1)) == wanted))
      return static_cast<int>(i);
  }
  return -1;
}

Dataset load_png_folder(const std::string& dir, const PngLimits& limits, size_t max_bytes) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(dir, ec ? system_reason("cannot open", ec.value()) : "is not a folder");
  std::vector<std::string> paths;
  fs::directory_iterator it(dir, ec);
  if (ec) throw Error(dir, system_reason("cannot list", ec.value()));
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    std::string file = it->path().filename().string();
    std::string ext = file.size() > 4 ? file.substr(file.size() - 4) : "";
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    std::error_code type_ec;
    if (ext == ".png" && it->is_regular_file(type_ec)) paths.push_back(it->path().string());
  }
  if (ec) throw Error(dir, system_reason("cannot list", ec.value()));
  if (paths.empty()) throw Error(dir, "no .png files in the folder");
  std::sort(paths.begin(), paths.end());

  Dataset set;
  Image first;
  for (const std::string& path : paths) {
    Image image = read_png(path, limits);
    if (set.count == 0) {
      first = image;
      set.height = image.height;
      set.width = image.width;
      set.channels = image.channels;
    } else if (image.width != first.width || image.height != first.height || image.channels != first.channels) {
      throw Error(path, fmt::format("is {}, but {} is {}: the images of a folder must all be the same size",
                                    describe(image), paths[0], describe(first)));
    }
    if (set.images.size() + image.pixels.size() > max_bytes || set.count == INT_MAX)
      throw Error(dir, fmt::format("the images hold more than the limit of {} bytes", max_bytes));
    set.images.insert(set.images.end(), image.pixels.begin(), image.pixels.end());
    ++set.count;
  }
  return set;
}

}  // namespace gen
