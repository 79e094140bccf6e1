#include "core/provenance.h"

#include <sys/stat.h>

#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "core/error.h"
#include "core/files.h"
#include "core/sha256.h"

namespace gen {
namespace {
std::string g_software, g_command;
std::vector<std::string> g_inputs;
TextFields g_text;
bool g_ready = false;

uint32_t be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

TextFields png_text(const std::string& path, const std::string& bytes) {
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  TextFields fields;
  size_t at = 8;
  while (true) {
    if (at + 12 > bytes.size()) throw Error(path, "a damaged PNG: it ends inside a chunk");
    const uint32_t length = be32(data + at);
    const std::string type(bytes, at + 4, 4);
    if (length > bytes.size() - at - 12) throw Error(path, "a damaged PNG: a chunk runs past the end");
    if (type == "tEXt") {
      const std::string body(bytes, at + 8, length);
      const size_t nul = body.find('\0');
      if (nul == std::string::npos || nul == 0 || nul > 79) throw Error(path, "a damaged PNG: a tEXt chunk without a key");
      fields.emplace_back(body.substr(0, nul), body.substr(nul + 1));
    }
    if (type == "IEND") return fields;
    at += 12 + length;
  }
}

// The comment extensions of a GIF, each "key: value" line a field.
TextFields gif_text(const std::string& path, const std::string& bytes) {
  const auto* d = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  auto need = [&](size_t at, size_t count) {
    if (at + count > n) throw Error(path, "a damaged GIF: it ends inside a block");
  };
  need(0, 13);
  size_t at = 13;
  if (d[10] & 0x80) at += 3u << ((d[10] & 7) + 1);  // the global colour table
  // Sub-blocks: a length byte, that many bytes, ..., a zero. Returns their bytes.
  auto sub_blocks = [&](size_t& pos) {
    std::string out;
    for (;;) {
      need(pos, 1);
      const size_t len = d[pos++];
      if (len == 0) return out;
      need(pos, len);
      out.append(bytes, pos, len);
      pos += len;
    }
  };
  TextFields fields;
  for (;;) {
    need(at, 1);
    const unsigned char kind = d[at++];
    if (kind == 0x3B) return fields;  // the trailer
    if (kind == 0x21) {               // an extension: its label, then sub-blocks
      need(at, 1);
      const unsigned char label = d[at++];
      std::string body = sub_blocks(at);
      if (label != 0xFE) continue;
      size_t start = 0;
      while (start < body.size()) {
        size_t end = body.find('\n', start);
        if (end == std::string::npos) end = body.size();
        const std::string line = body.substr(start, end - start);
        const size_t colon = line.find(": ");
        if (colon == std::string::npos) fields.emplace_back("Comment", line);
        else fields.emplace_back(line.substr(0, colon), line.substr(colon + 2));
        start = end + 1;
      }
    } else if (kind == 0x2C) {  // an image: its descriptor, a local colour table, LZW data
      need(at, 10);
      const unsigned char flags = d[at + 8];
      at += 9;
      if (flags & 0x80) at += 3u << ((flags & 7) + 1);
      need(at, 1);
      ++at;  // the LZW minimum code size
      (void)sub_blocks(at);
    } else {
      throw Error(path, fmt::format("a damaged GIF: an unknown block 0x{:02x}", kind));
    }
  }
}
}  // namespace

void set_provenance(std::string software, std::string command, std::vector<std::string> inputs) {
  g_software = std::move(software);
  g_command = std::move(command);
  g_inputs = std::move(inputs);
  g_text.clear();
  g_ready = false;
}

const TextFields& provenance_text() {
  if (g_ready || g_software.empty()) return g_text;
  g_ready = true;
  g_text.emplace_back("Software", g_software);
  g_text.emplace_back("gen:command", g_command);
  std::string inputs;
  for (const std::string& path : g_inputs) {
    struct stat st {};
    if (path == "-" || ::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (int64_t{1} << 30))
      continue;
    std::string hash;
    try {
      hash = sha256_hex(read_file(path));
    } catch (const Error&) {
      continue;  // the tool itself will say what is wrong with it
    }
    inputs += fmt::format("{}{} sha256 {}", inputs.empty() ? "" : ", ",
                          std::filesystem::path(path).filename().string(), hash);
  }
  if (!inputs.empty()) g_text.emplace_back("gen:inputs", inputs);
  return g_text;
}

TextFields read_image_text(const std::string& path) { return image_text(read_file(path, size_t{1} << 28), path); }

TextFields image_text(const std::string& bytes, const std::string& path) {
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), "\x89PNG\r\n\x1a\n", 8) == 0) return png_text(path, bytes);
  if (bytes.size() >= 6 && (bytes.compare(0, 6, "GIF89a") == 0 || bytes.compare(0, 6, "GIF87a") == 0))
    return gif_text(path, bytes);
  throw Error(path, "neither a PNG nor a GIF");
}

}  // namespace gen
