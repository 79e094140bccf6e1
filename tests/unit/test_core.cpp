#include <doctest/doctest.h>

#include <dirent.h>
#include <omp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"
#include "core/rng.h"
#include "core/sha256.h"
#include "core/threads.h"
#include "core/utf8.h"
#include "io/plot.h"

using namespace gen;

namespace {
std::string make_temp_dir() {
  char dir[] = "/tmp/gen_test_XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  return dir;
}

std::set<std::string> list_dir(const std::string& dir) {
  std::set<std::string> names;
  DIR* d = opendir(dir.c_str());
  while (dirent* e = readdir(d))
    if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") names.insert(e->d_name);
  closedir(d);
  return names;
}
}  // namespace

TEST_CASE("Output appears only on commit, complete, and leaves nothing behind otherwise") {
  std::string dir = make_temp_dir();
  std::string path = dir + "/out.txt";
  {
    Output out(path);
    out.write("hello ");
    out.write(std::string(200000, 'x'));
    CHECK(list_dir(dir).size() == 1);  // only the temporary file
    CHECK(access(path.c_str(), F_OK) != 0);
    out.commit();
  }
  CHECK(list_dir(dir) == std::set<std::string>{"out.txt"});
  CHECK(read_file(path).size() == 200006);
  {
    Output out(path);  // abandoned: the old file stays as it was
    out.write("partial");
  }
  CHECK(list_dir(dir) == std::set<std::string>{"out.txt"});
  CHECK(read_file(path).size() == 200006);
  struct stat info;
  REQUIRE(stat(path.c_str(), &info) == 0);
  mode_t mask = umask(0);
  umask(mask);
  CHECK((info.st_mode & 0777) == (0666 & ~mask));
  unlink(path.c_str());
  rmdir(dir.c_str());
}

TEST_CASE("Input and Output report the file and the reason") {
  CHECK_THROWS_WITH_AS(Input("/nonexistent/x"), "/nonexistent/x: cannot open: no such file or directory", Error);
  CHECK_THROWS_WITH_AS(Input("/tmp"), "/tmp: is a directory", Error);
  CHECK_THROWS_WITH_AS(Output("/nonexistent/dir/x"), "/nonexistent/dir/x: cannot create: no such file or directory",
                       Error);
  CHECK_THROWS_WITH_AS(Output("/tmp"), "/tmp: is a directory", Error);
  const std::string hundred(100, 'a');
  MemorySource big(hundred, "big");  // MemorySource views its data: keep it alive
  CHECK_THROWS_WITH_AS(read_all(big, 10), "big: larger than the limit of 10 bytes", Error);
}

TEST_CASE("UTF-8: well-formed characters, ill-formed bytes") {
  CHECK(utf8_char_length("a", 0) == 1);
  CHECK(utf8_char_length("\xC3\xA9", 0) == 2);
  CHECK(utf8_char_length("\xE4\xB8\xAD", 0) == 3);
  CHECK(utf8_char_length("\xF0\x9F\x98\x80", 0) == 4);
  CHECK(utf8_char_length("\xC0\x80", 0) == 0);          // overlong
  CHECK(utf8_char_length("\xE0\x80\x80", 0) == 0);      // overlong
  CHECK(utf8_char_length("\xED\xA0\x80", 0) == 0);      // surrogate
  CHECK(utf8_char_length("\xF4\x90\x80\x80", 0) == 0);  // above U+10FFFF
  CHECK(utf8_char_length("\xE4\xB8", 0) == 0);          // truncated
  CHECK(utf8_char_length("\x80", 0) == 0);              // lone continuation
  CHECK(utf8_count_chars("a\xC3\xA9\xFF\xE4\xB8\xAD") == 4);
  CHECK(utf8_first_invalid("ab\xC3\xA9z\xFFq") == 5);
  CHECK(utf8_first_invalid("ok") == 2);
}

TEST_CASE("Rng: same seed same sequence, streams differ, state restores exactly") {
  Rng a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    uint32_t x = a.next_u32();
    CHECK(x == b.next_u32());
    differs |= x != c.next_u32();
  }
  CHECK(differs);
  Rng s0 = a.stream(0), s1 = a.stream(1);
  CHECK(s0.next_u64() != s1.next_u64());

  Rng r(7);
  r.normal();  // leaves a spare normal in the state
  Rng::State saved = r.save();
  float x1 = r.normal(), x2 = r.normal();
  uint32_t x3 = r.next_u32();
  Rng restored;
  restored.restore(saved);
  CHECK(restored.normal() == x1);
  CHECK(restored.normal() == x2);
  CHECK(restored.next_u32() == x3);
}

TEST_CASE("Rng: uniform, below and normal have the right range and moments") {
  Rng rng(1);
  const int n = 200000;
  double sum = 0, sum_sq = 0;
  int counts[7] = {};
  float lowest = 1, highest = 0;
  for (int i = 0; i < n; ++i) {
    float u = rng.uniform();
    lowest = std::min(lowest, u);
    highest = std::max(highest, u);
    counts[rng.below(7)]++;
    double z = rng.normal();
    sum += z;
    sum_sq += z * z;
  }
  CHECK(lowest >= 0.0f);
  CHECK(highest < 1.0f);
  for (int k = 0; k < 7; ++k) CHECK(std::abs(counts[k] - n / 7.0) < 5 * std::sqrt(n / 7.0));
  CHECK(std::abs(sum / n) < 0.01);
  CHECK(std::abs(sum_sq / n - 1.0) < 0.02);
}

// Every thread writes its slot, meets the others, and reads every slot as written in this
// round: no thread passes a barrier before all have reached it, and what each wrote before it
// is seen after it; with as many threads as processors (spinning) and more (yielding).
TEST_CASE("SpinBarrier: no thread passes before all arrive; writes before it are seen after") {
  for (int threads : {2, 3, omp_get_num_procs() + 2}) {
    CAPTURE(threads);
    SpinBarrier barrier;
    std::vector<int64_t> slots(static_cast<size_t>(threads), -1);
    std::atomic<int> wrong{0}, team_size{0};
    const int rounds = 2000;
#pragma omp parallel num_threads(threads)
    {
      const int me = omp_get_thread_num(), team = omp_get_num_threads();
      if (me == 0) team_size = team;
      for (int r = 0; r < rounds && team == threads; ++r) {
        slots[static_cast<size_t>(me)] = int64_t{r} * threads + me;
        barrier.wait(team);
        for (int t = 0; t < threads; ++t)
          if (slots[static_cast<size_t>(t)] != int64_t{r} * threads + t) wrong.fetch_add(1);
        barrier.wait(team);  // nobody writes the next round before everyone has read this one
      }
    }
    REQUIRE(team_size.load() == threads);
    CHECK(wrong.load() == 0);
  }
}

TEST_CASE("parallel_for runs every index once and passes exceptions on") {
  std::vector<int> hits(1000, 0);
  parallel_for(hits.size(), 2, [&](size_t i) { hits[i]++; });
  CHECK(std::count(hits.begin(), hits.end(), 1) == 1000);
  CHECK_THROWS_AS(parallel_for(10, 2,
                               [](size_t i) {
                                 if (i == 5) throw Error("x", "boom");
                               }),
                  Error);
}

TEST_CASE("Progress formats durations and amounts") {
  CHECK(Progress::format_duration(5) == "0:05");
  CHECK(Progress::format_duration(125) == "2:05");
  CHECK(Progress::format_duration(3725) == "1:02:05");
  CHECK(Progress::format_amount(532, "B") == "532 B");
  CHECK(Progress::format_amount(1234567, "B") == "1.2 MB");
  CHECK(Progress::format_amount(12000, "tok") == "12.0 ktok");
}

TEST_CASE("SHA-256: FIPS 180-4 test vectors, with the CPU's SHA instructions and without") {
  for (auto hash : {sha256_hex, detail::sha256_hex_portable}) {
    CHECK(hash("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(hash("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    CHECK(hash(std::string(1000000, 'a')) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  }
  if (!detail::sha256_uses_cpu_instructions()) MESSAGE("this CPU has no SHA instructions: the portable code twice");
  // Every length around the block and padding boundaries, on bytes of every value.
  std::string bytes;
  for (int i = 0; i < 300; ++i) bytes.push_back(static_cast<char>((i * 131 + 7) & 255));
  for (size_t n = 0; n <= bytes.size(); ++n) {
    CAPTURE(n);
    CHECK(sha256_hex(std::string_view(bytes).substr(0, n)) == detail::sha256_hex_portable(std::string_view(bytes).substr(0, n)));
  }
}

TEST_CASE("chart ticks are round numbers inside the range, and a chart renders as PNG") {
  CHECK(gen::nice_ticks(0, 2000, 8) == std::vector<double>{0, 500, 1000, 1500, 2000});
  CHECK(gen::nice_ticks(1.83, 4.21, 6) == std::vector<double>{2.0, 2.5, 3.0, 3.5, 4.0});
  CHECK(gen::nice_ticks(1, 1, 6).empty());
  gen::Chart chart;
  chart.series.push_back({"train", {{0, 4.2}, {1, 3.1}, {2, NAN}, {3, 2.0}}, 0x1f77b4});
  chart.series.push_back({"empty", {}, 0xd62728, true});
  std::string png = gen::render_png(chart);
  REQUIRE(png.size() > 8);
  CHECK(png.substr(0, 8) == "\x89PNG\r\n\x1a\n");
}
