// The images an image model trains on, loaded and checked the same way by every image trainer
// (gdiffuse train, ggan train, gscore train).
//
//   gen::ImageData data = gen::load_training_images(job.data, job.labels, s.limit, "the U-Net");
//   gen::check_resumed_images(data.set, job.data, size, channels, fingerprint, saved, run.resume);
//   gen::check_labels(data.set, job.data, classes);
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/image_files.h"

namespace gen {

// The data set (io/image_files.h's spec, with labels), its first `limit` images (0: all): at
// least one, square; `model` names who wants them square in the message.
ImageData load_training_images(const std::string& spec, const std::string& labels, int64_t limit, const char* model);

// A resumed run's images: of the checkpoint's model's size, and the very images it was trained
// on (their fingerprint, train/train_state.h's data_fingerprint, against the saved one). Errors
// name the data.
void check_resumed_images(const Dataset& set, const std::string& name, int64_t size, int64_t channels,
                          const std::string& fingerprint, const std::string& saved, const std::string& checkpoint);

// A class-conditional model's images (classes > 0): labelled, every label below `classes`
// (nothing to check for an unconditional one, classes 0).
void check_labels(const Dataset& set, const std::string& name, int64_t classes);

// "32,64,128" for {32, 64, 128}: parse_int_list's input.
std::string format_int_list(const std::vector<int64_t>& values);

}  // namespace gen
