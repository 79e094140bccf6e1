// Animated GIFs (GIF89a, through giflib): frames of one size, played in a loop. Gray frames keep
// their 256 levels exactly (a palette of 256 grays); RGB frames are mapped to the nearest colour
// of a fixed 6 x 7 x 6 colour cube (252 colours, green finest), without dithering.
//
//   gen::write_gif("walk.gif", frames, /*delay_cs=*/10, /*last_delay_cs=*/100);
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/image.h"

namespace gen {

// delay_cs: hundredths of a second each frame shows; last_delay_cs: the last frame's (a pause
// before the loop starts again). Throws Error("gif", reason) with no frames, frames of different
// sizes or channel counts, a side over 65535 pixels, or delays outside [0, 65535]. The same frames
// always give the same bytes.
// comment: written as a comment extension before the frames (empty: none).
std::vector<uint8_t> encode_gif(const std::vector<Image>& frames, int delay_cs, int last_delay_cs,
                                const std::string& comment = {});
// Through Output: atomic, "-" is stdout; the run's provenance (core/provenance.h) as the comment.
void write_gif(const std::string& path, const std::vector<Image>& frames, int delay_cs, int last_delay_cs);

// Whether a path names a GIF (ends in .gif, any case).
bool is_gif_path(const std::string& path);

}  // namespace gen
