// Line charts as PNG (cairo): loss curves of gtrain, gdiffuse and ggan.
//
//   gen::Chart chart;
//   chart.title = "gtrain", chart.x_label = "step", chart.y_label = "loss";
//   chart.series.push_back({"train", train_points, 0x1f77b4});
//   chart.series.push_back({"validation", val_points, 0xd62728, /*markers=*/true});
//   std::string png = gen::render_png(chart);   // bytes of a PNG file
//
// Axes get "nice" ticks (1, 2, 5 x 10^k); the y range covers every point of every series, or
// the range given. Series are drawn in order, so the last one is on top; the legend lists them.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "io/image.h"

namespace gen {

struct ChartSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y), in order of x; non-finite y are skipped
  uint32_t rgb = 0x1f77b4;                         // 0xRRGGBB
  bool markers = false;                            // a dot at each point as well as the line
  double width = 1.5;                              // line width in pixels
};

struct Chart {
  std::string title, x_label, y_label;
  std::vector<ChartSeries> series;
  int width = 900, height = 540;
  // Explicit y range; when lo >= hi the range is taken from the data.
  double y_lo = 0, y_hi = 0;
};

// The chart as the bytes of a PNG file. Throws std::runtime_error if cairo fails.
std::string render_png(const Chart& chart);

// Labels beside a grid of images: one above each column (step numbers of a strip), one left of
// each row (class names), drawn with cairo in DejaVu Sans, black on a white margin. centers_x
// and centers_y are the cells' centres in the grid's pixels; text_px the font size. The result is
// the grid with its margins, gray or RGB as the grid is.
struct GridLabels {
  std::vector<std::string> columns, rows;
};
Image label_grid(const Image& grid, const GridLabels& labels, const std::vector<double>& centers_x,
                 const std::vector<double>& centers_y, double text_px);

// Ticks for [lo, hi]: multiples of 1, 2 or 5 x 10^k, about `target` of them, inside the range.
std::vector<double> nice_ticks(double lo, double hi, int target = 6);

}  // namespace gen
