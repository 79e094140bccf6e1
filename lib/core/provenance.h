// How an output was made, written into every image a tool writes (PNG tEXt chunks, a GIF
// comment) so that the picture says how to make it again, as stable-diffusion.cpp and other
// image generators do. parse_command_line (core/cli.h) records it once per run: the tool and
// its version, the command with every setting that decides the output (defaults included;
// outputs, threads and progress left out, so the same settings give the same bytes), and the
// SHA-256 of each input file named on the command line (the checkpoint, an input image).
//
//   gen::provenance_text()   // {{"Software", "gdiffuse 0.1.0"},
//                            //  {"gen:command", "gdiffuse sample ddpm.st --prompt sneaker ..."},
//                            //  {"gen:inputs", "ddpm.st sha256 3f2a..."}}
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace gen {

using TextFields = std::vector<std::pair<std::string, std::string>>;

// software: "gdiffuse 0.1.0"; command: the settings as a shell command; inputs: the files the
// command names, hashed when an image is first written.
void set_provenance(std::string software, std::string command, std::vector<std::string> inputs);
// The fields to write (empty when nothing was recorded, as in the library's own tests).
const TextFields& provenance_text();

// The text fields of a PNG (tEXt chunks) or a GIF (comment extensions, "key: value" lines);
// throws Error naming the file if it is neither or is damaged.
TextFields read_image_text(const std::string& path);
// The same for bytes in memory; name is what errors say.
TextFields image_text(const std::string& bytes, const std::string& name);

}  // namespace gen
