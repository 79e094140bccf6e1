#include "io/plot.h"

#include <cairo.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>

namespace gen {

std::vector<double> nice_ticks(double lo, double hi, int target) {
  std::vector<double> ticks;
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi) || target < 1) return ticks;
  double raw = (hi - lo) / target;
  double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * magnitude;
    if (step >= raw) break;
  }
  // Multiples of step, by index, so that 0.1 + 0.2 never prints as 0.30000000000000004.
  for (double k = std::ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k += 1) ticks.push_back(k * step);
  return ticks;
}

namespace {

struct Surface {
  std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)> surface{nullptr, cairo_surface_destroy};
  std::unique_ptr<cairo_t, decltype(&cairo_destroy)> cr{nullptr, cairo_destroy};
};

void set_rgb(cairo_t* cr, uint32_t rgb, double alpha = 1) {
  cairo_set_source_rgba(cr, ((rgb >> 16) & 255) / 255.0, ((rgb >> 8) & 255) / 255.0, (rgb & 255) / 255.0, alpha);
}

// A tick label: as short as it can be and still exact at the tick's precision.
std::string tick_label(double value, double step) {
  if (std::fabs(value) < step * 1e-6) return "0";
  int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  if (std::fabs(value) >= 1e6) return fmt::format("{:.3g}", value);
  return fmt::format("{:.{}f}", value, decimals);
}

void text(cairo_t* cr, const std::string& s, double x, double y, double align_x, double align_y) {
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  cairo_move_to(cr, x - e.width * align_x - e.x_bearing, y - e.height * align_y - e.y_bearing);
  cairo_show_text(cr, s.c_str());
}

cairo_status_t append(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

}  // namespace

Image label_grid(const Image& grid, const GridLabels& labels, const std::vector<double>& centers_x,
                 const std::vector<double>& centers_y, double text_px) {
  check_image(grid, "grid");
  // The margins: as wide as the longest row label, as tall as a line of text.
  Surface measure;
  measure.surface.reset(cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1));
  measure.cr.reset(cairo_create(measure.surface.get()));
  cairo_select_font_face(measure.cr.get(), "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(measure.cr.get(), text_px);
  double widest = 0;
  for (const std::string& s : labels.rows) {
    cairo_text_extents_t e;
    cairo_text_extents(measure.cr.get(), s.c_str(), &e);
    widest = std::max(widest, e.x_advance);
  }
  const int gap = static_cast<int>(std::ceil(text_px / 2));
  const int left = labels.rows.empty() ? 0 : static_cast<int>(std::ceil(widest)) + 2 * gap;
  const int top = labels.columns.empty() ? 0 : static_cast<int>(std::ceil(text_px * 1.4)) + gap;
  const int width = grid.width + left, height = grid.height + top;
  Surface out;
  out.surface.reset(cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height));
  out.cr.reset(cairo_create(out.surface.get()));
  cairo_t* cr = out.cr.get();
  set_rgb(cr, 0xffffff);
  cairo_paint(cr);
  // The grid's pixels, then the text over the margins.
  cairo_surface_flush(out.surface.get());
  unsigned char* data = cairo_image_surface_get_data(out.surface.get());
  const int stride = cairo_image_surface_get_stride(out.surface.get());
  for (int y = 0; y < grid.height; ++y)
    for (int x = 0; x < grid.width; ++x) {
      auto* px = reinterpret_cast<uint32_t*>(data + static_cast<size_t>(y + top) * stride) + x + left;
      const uint8_t* g = grid.pixels.data() + (static_cast<size_t>(y) * grid.width + x) * grid.channels;
      const uint32_t r = g[0], gr = grid.channels == 3 ? g[1] : g[0], b = grid.channels == 3 ? g[2] : g[0];
      *px = (r << 16) | (gr << 8) | b;
    }
  cairo_surface_mark_dirty(out.surface.get());
  cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, text_px);
  set_rgb(cr, 0x000000);
  for (size_t c = 0; c < labels.columns.size() && c < centers_x.size(); ++c)
    text(cr, labels.columns[c], left + centers_x[c], top - gap / 2.0, 0.5, 1.0);
  for (size_t r = 0; r < labels.rows.size() && r < centers_y.size(); ++r)
    text(cr, labels.rows[r], left - gap, top + centers_y[r], 1.0, 0.5);
  cairo_surface_flush(out.surface.get());
  if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) throw std::runtime_error(cairo_status_to_string(cairo_status(cr)));
  Image result(width, height, grid.channels, 0);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const uint32_t px = reinterpret_cast<const uint32_t*>(data + static_cast<size_t>(y) * stride)[x];
      uint8_t* o = result.pixels.data() + (static_cast<size_t>(y) * width + x) * grid.channels;
      if (grid.channels == 3) {
        o[0] = static_cast<uint8_t>(px >> 16), o[1] = static_cast<uint8_t>(px >> 8), o[2] = static_cast<uint8_t>(px);
      } else {
        o[0] = static_cast<uint8_t>((((px >> 16) & 255) + ((px >> 8) & 255) + (px & 255)) / 3);
      }
    }
  return result;
}

std::string render_png(const Chart& chart) {
  const double W = chart.width, H = chart.height;
  Surface s;
  s.surface.reset(cairo_image_surface_create(CAIRO_FORMAT_RGB24, chart.width, chart.height));
  s.cr.reset(cairo_create(s.surface.get()));
  cairo_t* cr = s.cr.get();
  if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) throw std::runtime_error("cannot create a cairo surface");

  // The data range.
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  for (const auto& series : chart.series)
    for (auto [x, y] : series.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      x_lo = std::min(x_lo, x), x_hi = std::max(x_hi, x);
      y_lo = std::min(y_lo, y), y_hi = std::max(y_hi, y);
    }
  if (chart.y_hi > chart.y_lo) y_lo = chart.y_lo, y_hi = chart.y_hi;
  if (!(x_hi >= x_lo)) x_lo = 0, x_hi = 1;
  if (!(y_hi >= y_lo)) y_lo = 0, y_hi = 1;
  if (x_hi == x_lo) x_hi = x_lo + 1;
  if (y_hi == y_lo) y_lo -= 0.5, y_hi += 0.5;
  double pad = (y_hi - y_lo) * 0.04;
  y_lo -= pad, y_hi += pad;
  if (x_lo >= 0 && x_lo <= (x_hi - x_lo) * 0.1) x_lo = 0;  // steps start at 0

  // The plot area, in pixels.
  const double left = 78, right = W - 24, top = chart.title.empty() ? 24 : 52, bottom = H - 58;
  auto px = [&](double x) { return left + (x - x_lo) / (x_hi - x_lo) * (right - left); };
  auto py = [&](double y) { return bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top); };

  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);

  // Grid and ticks.
  cairo_set_font_size(cr, 13);
  cairo_set_line_width(cr, 1);
  auto xt = nice_ticks(x_lo, x_hi, 8), yt = nice_ticks(y_lo, y_hi, 6);
  for (double x : xt) {
    set_rgb(cr, 0xe6e6e6);
    cairo_move_to(cr, std::round(px(x)) + 0.5, top);
    cairo_line_to(cr, std::round(px(x)) + 0.5, bottom);
    cairo_stroke(cr);
    set_rgb(cr, 0x333333);
    text(cr, tick_label(x, xt.size() > 1 ? xt[1] - xt[0] : 1), px(x), bottom + 8, 0.5, 0);
  }
  for (double y : yt) {
    set_rgb(cr, 0xe6e6e6);
    cairo_move_to(cr, left, std::round(py(y)) + 0.5);
    cairo_line_to(cr, right, std::round(py(y)) + 0.5);
    cairo_stroke(cr);
    set_rgb(cr, 0x333333);
    text(cr, tick_label(y, yt.size() > 1 ? yt[1] - yt[0] : 1), left - 8, py(y), 1, 0.5);
  }
  set_rgb(cr, 0x333333);
  cairo_rectangle(cr, left + 0.5, top + 0.5, right - left, bottom - top);
  cairo_stroke(cr);

  // Labels and title.
  cairo_set_font_size(cr, 14);
  if (!chart.x_label.empty()) text(cr, chart.x_label, (left + right) / 2, H - 14, 0.5, 1);
  if (!chart.y_label.empty()) {
    cairo_save(cr);
    cairo_translate(cr, 20, (top + bottom) / 2);
    cairo_rotate(cr, -M_PI / 2);
    text(cr, chart.y_label, 0, 0, 0.5, 0.5);
    cairo_restore(cr);
  }
  if (!chart.title.empty()) {
    cairo_set_font_size(cr, 16);
    text(cr, chart.title, (left + right) / 2, 18, 0.5, 0);
  }

  // The series, clipped to the plot area.
  cairo_save(cr);
  cairo_rectangle(cr, left, top, right - left, bottom - top);
  cairo_clip(cr);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  for (const auto& series : chart.series) {
    set_rgb(cr, series.rgb);
    cairo_set_line_width(cr, series.width);
    bool drawing = false;
    for (auto [x, y] : series.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) {
        drawing = false;
        continue;
      }
      if (drawing)
        cairo_line_to(cr, px(x), py(y));
      else
        cairo_move_to(cr, px(x), py(y));
      drawing = true;
    }
    cairo_stroke(cr);
    if (series.markers)
      for (auto [x, y] : series.points) {
        if (!std::isfinite(x) || !std::isfinite(y)) continue;
        cairo_arc(cr, px(x), py(y), 3.2, 0, 2 * M_PI);
        cairo_fill(cr);
      }
  }
  cairo_restore(cr);

  // The legend, top right inside the plot.
  cairo_set_font_size(cr, 13);
  double legend_width = 0;
  for (const auto& series : chart.series) {
    cairo_text_extents_t e;
    cairo_text_extents(cr, series.name.c_str(), &e);
    legend_width = std::max(legend_width, e.x_advance);
  }
  if (!chart.series.empty()) {
    double box_w = legend_width + 48, box_h = 22.0 * static_cast<double>(chart.series.size()) + 8;
    double bx = right - box_w - 10, by = top + 10;
    cairo_set_source_rgba(cr, 1, 1, 1, 0.9);
    cairo_rectangle(cr, bx, by, box_w, box_h);
    cairo_fill_preserve(cr);
    set_rgb(cr, 0xbbbbbb);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
    for (size_t i = 0; i < chart.series.size(); ++i) {
      const auto& series = chart.series[i];
      double y = by + 15 + 22.0 * static_cast<double>(i);
      set_rgb(cr, series.rgb);
      cairo_set_line_width(cr, std::max(series.width, 2.0));
      cairo_move_to(cr, bx + 8, y);
      cairo_line_to(cr, bx + 32, y);
      cairo_stroke(cr);
      if (series.markers) {
        cairo_arc(cr, bx + 20, y, 3.2, 0, 2 * M_PI);
        cairo_fill(cr);
      }
      set_rgb(cr, 0x222222);
      text(cr, series.name, bx + 40, y, 0, 0.5);
    }
  }

  cairo_surface_flush(s.surface.get());
  std::string png;
  if (cairo_surface_write_to_png_stream(s.surface.get(), append, &png) != CAIRO_STATUS_SUCCESS)
    throw std::runtime_error("cairo cannot encode the chart as PNG");
  return png;
}

}  // namespace gen
