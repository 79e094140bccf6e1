#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "io/idx.h"
#include "io/image.h"

using namespace gen;

namespace {

std::string idx(std::vector<uint32_t> dims, const std::string& data, int type = 0x08) {
  std::string out = {0, 0, static_cast<char>(type), static_cast<char>(dims.size())};
  for (uint32_t d : dims)
    out += std::string{static_cast<char>(d >> 24), static_cast<char>(d >> 16), static_cast<char>(d >> 8),
                       static_cast<char>(d)};
  return out + data;
}

std::string gzip(const std::string& raw) {
  z_stream z{};
  REQUIRE(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&z, raw.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  z.avail_in = static_cast<uInt>(raw.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

void put(const std::string& path, const std::string& bytes) {
  Output out(path);
  out.write(bytes);
  out.commit();
}

std::string parse_error(const std::string& bytes, size_t max_bytes = kIdxMaxBytes) {
  try {
    parse_idx(bytes, "x.idx", max_bytes);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

std::string make_temp_dir() {
  char dir[] = "/tmp/gen_idx_XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  return dir;
}

// Three 2x4 images: image i holds i*10 + position.
std::string three_images() {
  std::string data;
  for (int i = 0; i < 3; ++i)
    for (int p = 0; p < 8; ++p) data += static_cast<char>(i * 10 + p);
  return data;
}

}  // namespace

TEST_CASE("idx: an image file and a label file load, plain or gzip, as a pair") {
  std::string dir = make_temp_dir();
  std::string images = idx({3, 2, 4}, three_images());
  std::string labels = idx({3}, std::string{0, 9, 5});
  put(dir + "/img", images);
  put(dir + "/lab", labels);
  put(dir + "/img.gz", gzip(images));
  put(dir + "/lab.gz", gzip(labels));
  // gzip -d reads concatenated members as one stream; so do we.
  put(dir + "/img2.gz", gzip(images.substr(0, 11)) + gzip(images.substr(11)));
  for (auto [img, lab] : {std::pair{"/img", "/lab"}, {"/img.gz", "/lab.gz"}, {"/img2.gz", "/lab"}}) {
    Dataset set = load_idx_pair(dir + img, dir + lab);
    CHECK(set.count == 3);
    CHECK(set.height == 2);
    CHECK(set.width == 4);
    CHECK(set.channels == 1);
    CHECK(set.labels == std::vector<uint8_t>{0, 9, 5});
    CHECK(set.labelled());
    Image second = set.image(1);
    CHECK(second.width == 4);
    CHECK(second.height == 2);
    CHECK(second.at(0, 0) == 10);
    CHECK(second.at(3, 1) == 17);
  }
  IdxArray array = read_idx(dir + "/lab.gz");
  CHECK(array.dims == std::vector<uint32_t>{3});

  // Pair-level checks.
  put(dir + "/lab2", idx({2}, std::string{0, 1}));
  CHECK_THROWS_WITH_AS(load_idx_pair(dir + "/img", dir + "/lab2"),
                       (dir + "/lab2: 2 labels for the 3 images of " + dir + "/img").c_str(), Error);
  put(dir + "/lab10", idx({3}, std::string{0, 10, 1}));
  CHECK_THROWS_WITH_AS(load_idx_pair(dir + "/img", dir + "/lab10"),
                       (dir + "/lab10: label 10 of item 1 is not below the number of classes, 10").c_str(), Error);
  CHECK_THROWS_WITH_AS(load_idx_pair(dir + "/img", dir + "/lab", 6),
                       (dir + "/lab: label 9 of item 1 is not below the number of classes, 6").c_str(), Error);
  CHECK_THROWS_WITH_AS(
      load_idx_pair(dir + "/lab", dir + "/lab"),
      (dir + "/lab: expected images (magic 0x00000803: count, rows, columns), found 1 dimension (3)").c_str(), Error);
  CHECK_THROWS_WITH_AS(load_idx_pair(dir + "/img", dir + "/img"),
                       (dir + "/img: expected labels (magic 0x00000801: count), found 3 dimensions (3x2x4)").c_str(),
                       Error);
  put(dir + "/none", idx({0, 2, 4}, ""));
  put(dir + "/lab0", idx({0}, ""));
  CHECK_THROWS_WITH_AS(load_idx_pair(dir + "/none", dir + "/lab0"), (dir + "/none: holds no images").c_str(), Error);
  CHECK_THROWS_WITH_AS(read_idx(dir + "/missing"), (dir + "/missing: cannot open: no such file or directory").c_str(),
                       Error);
  std::filesystem::remove_all(dir);
}

TEST_CASE("idx: damaged files are errors that name the file") {
  std::string good = idx({3, 2, 4}, three_images());
  CHECK(parse_error("") == "x.idx: not an IDX file: 0 bytes is too short for the header");
  CHECK(parse_error(std::string("\x01\x00\x08\x03", 4) + good.substr(4)) ==
        "x.idx: not an IDX file (magic 0x01000803; 0x00000803 for images, 0x00000801 for labels)");
  CHECK(parse_error(idx({3}, "abcdefghijkl", 0x0D)) ==
        "x.idx: IDX element type 0x0d is not supported (only unsigned bytes, 0x08)");
  CHECK(parse_error(idx({}, "")) == "x.idx: IDX file with 0 dimensions (1 to 4 supported)");
  CHECK(parse_error(idx({1, 1, 1, 1, 1}, "x")) == "x.idx: IDX file with 5 dimensions (1 to 4 supported)");
  CHECK(parse_error(good.substr(0, 9)) == "x.idx: truncated IDX header: 3 dimensions need 12 bytes, found 5");
  CHECK(parse_error(good.substr(0, good.size() - 1)) ==
        "x.idx: truncated IDX file: dimensions 3x2x4 need 24 bytes of data, the file has 23");
  CHECK(parse_error(good + "zz") == "x.idx: 2 bytes after the 24 bytes of data that dimensions 3x2x4 call for");
  CHECK(parse_error(gzip(good.substr(0, good.size() - 1))) ==
        "x.idx: truncated IDX data: dimensions 3x2x4 need 24 bytes, the data ends after 23");
  CHECK(parse_error(gzip(good + "z")) == "x.idx: more data than the 24 bytes that dimensions 3x2x4 call for");
  CHECK(parse_error(idx({100000, 1000, 1000}, "")) ==
        "x.idx: IDX dimensions 100000x1000x1000 are over the limit of 1073741824 bytes");
  CHECK(parse_error(idx({0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, "")).find("over the limit") !=
        std::string::npos);
  CHECK(parse_error(good, 23) == "x.idx: IDX dimensions 3x2x4 are over the limit of 23 bytes");
  CHECK(parse_idx(good, "x.idx", 24).data.size() == 24);
  CHECK(parse_idx(idx({0}, ""), "x.idx").data.empty());

  // The gzip layer: truncated stream, damaged stream, garbage after it.
  std::string gz = gzip(good);
  CHECK(parse_error(gz.substr(0, gz.size() - 6)) ==
        "x.idx: truncated gzip data (the file ends inside the compressed stream)");
  CHECK(parse_error(gz.substr(0, 2)) == "x.idx: truncated gzip data (the file ends inside the compressed stream)");
  std::string bad_crc = gz;
  bad_crc[bad_crc.size() - 8] ^= 1;  // the CRC-32 of the contents
  CHECK(parse_error(bad_crc) == "x.idx: corrupt gzip data (incorrect data check)");
  std::string bad_header = gz;
  bad_header[2] = 7;  // compression method
  CHECK(parse_error(bad_header).rfind("x.idx: corrupt gzip data (", 0) == 0);
  CHECK(parse_error(gz + "junk") == "x.idx: 4 bytes of garbage after the gzip data");
}

TEST_CASE("idx: a gzip bomb stops at what the header declares, gunzip at its limit") {
  // 32 MB of zeros compress to about 32 kB; the header asks for 784 bytes.
  std::string bomb = gzip(idx({1, 28, 28}, std::string(size_t{32} << 20, '\0')));
  CHECK(bomb.size() < (size_t{64} << 10));
  auto start = std::chrono::steady_clock::now();
  CHECK(parse_error(bomb) == "x.idx: more data than the 784 bytes that dimensions 1x28x28 call for");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(500));
  CHECK_THROWS_WITH_AS(gunzip(bomb, "b.gz", 1 << 20),
                       "b.gz: gzip data inflates to more than the limit of 1048576 bytes", Error);
  std::string small = gzip("hello");
  CHECK(gunzip(small, "s.gz", 5) == "hello");
  CHECK_THROWS_WITH_AS(gunzip(small, "s.gz", 4), "s.gz: gzip data inflates to more than the limit of 4 bytes", Error);
  CHECK(gunzip(gzip(""), "e.gz") == "");
  CHECK_THROWS_WITH_AS(gunzip("plain", "p"), "p: not gzip data (no 1f 8b magic)", Error);
}

TEST_CASE("fashion_mnist_class: names by any spelling") {
  CHECK(kFashionMnistClasses[0] == std::string("T-shirt/top"));
  CHECK(kFashionMnistClasses[9] == std::string("Ankle boot"));
  CHECK(fashion_mnist_class("sneaker") == 7);
  CHECK(fashion_mnist_class("Ankle boot") == 9);
  CHECK(fashion_mnist_class("ankle-boot") == 9);
  CHECK(fashion_mnist_class("T-shirt/top") == 0);
  CHECK(fashion_mnist_class("tshirt") == 0);
  CHECK(fashion_mnist_class("top") == 0);
  CHECK(fashion_mnist_class("BAG") == 8);
  CHECK(fashion_mnist_class("boot") == -1);
  CHECK(fashion_mnist_class("") == -1);
}

TEST_CASE("load_png_folder: the PNGs of a folder, sorted by name, all of one size") {
  std::string dir = make_temp_dir();
  write_png(dir + "/b.png", Image(3, 2, 1, 2));
  write_png(dir + "/a.png", Image(3, 2, 1, 1));
  write_png(dir + "/c.PNG", Image(3, 2, 1, 3));
  put(dir + "/notes.txt", "not an image");
  std::filesystem::create_directory(dir + "/sub.png");
  Dataset set = load_png_folder(dir);
  CHECK(set.count == 3);
  CHECK(set.width == 3);
  CHECK(set.height == 2);
  CHECK(set.channels == 1);
  CHECK(!set.labelled());
  CHECK(set.image(0).pixels == std::vector<uint8_t>(6, 1));
  CHECK(set.image(2).pixels == std::vector<uint8_t>(6, 3));
  CHECK_THROWS_WITH_AS(load_png_folder(dir, {}, 17),
                       (dir + ": the images hold more than the limit of 17 bytes").c_str(), Error);

  write_png(dir + "/d.png", Image(3, 2, 3));
  CHECK_THROWS_WITH_AS(
      load_png_folder(dir),
      (dir + "/d.png: is 3x2 RGB, but " + dir + "/a.png is 3x2 gray: the images of a folder must all be the same size")
          .c_str(),
      Error);
  put(dir + "/d.png", "garbage");
  CHECK_THROWS_WITH_AS(load_png_folder(dir), (dir + "/d.png: not a PNG file (no PNG signature)").c_str(), Error);
  std::filesystem::remove_all(dir + "/sub.png");
  std::string empty = dir + "/sub.png";
  std::filesystem::create_directory(empty);
  CHECK_THROWS_WITH_AS(load_png_folder(empty), (empty + ": no .png files in the folder").c_str(), Error);
  CHECK_THROWS_WITH_AS(load_png_folder(dir + "/a.png"), (dir + "/a.png: is not a folder").c_str(), Error);
  CHECK_THROWS_WITH_AS(load_png_folder(dir + "/nothing"),
                       (dir + "/nothing: cannot open: no such file or directory").c_str(), Error);
  std::filesystem::remove_all(dir);
}

TEST_CASE("load_fashion_mnist: Debian's test set, when installed") {
  if (!std::filesystem::exists(std::string(kFashionMnistDir) + "/t10k-images-idx3-ubyte.gz")) {
    MESSAGE("skipped: ", kFashionMnistDir, " is absent (install dataset-fashion-mnist)");
    return;
  }
  Dataset test = load_fashion_mnist(false);
  CHECK(test.count == 10000);
  CHECK(test.height == 28);
  CHECK(test.width == 28);
  CHECK(test.images.size() == size_t{10000} * 28 * 28);
  REQUIRE(test.labels.size() == 10000);
  int per_class[10] = {};
  for (uint8_t label : test.labels) {
    REQUIRE(label < 10);
    ++per_class[label];
  }
  for (int n : per_class) CHECK(n == 1000);  // the test set is balanced
  CHECK(test.labels[0] == 9);                // the first test image is an ankle boot
  CHECK_THROWS_WITH_AS(load_fashion_mnist(false, "/nonexistent"),
                       "/nonexistent/t10k-images-idx3-ubyte.gz: not found: Fashion-MNIST comes with Debian's "
                       "dataset-fashion-mnist (scripts/install-deps.sh)",
                       Error);
}
