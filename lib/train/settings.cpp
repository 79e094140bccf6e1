#include "train/settings.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "core/error.h"

namespace gen {
namespace {

std::string key_of(const std::string& option) {
  std::string key = option.substr(option.find_first_not_of('-'));
  for (char& c : key)
    if (c == '-') c = '_';
  return key;
}

bool is_integer(const std::variant<int64_t*, float*, double*, bool*>& v) {
  return std::holds_alternative<int64_t*>(v);
}

std::string range_text(double lo, double hi, Bound bound, bool integer) {
  if (integer) return fmt::format("{}..{}", static_cast<int64_t>(lo), static_cast<int64_t>(hi));
  return fmt::format("{}{}, {}]", bound == Bound::open_low ? "(" : "[", lo, hi);
}

std::string range_problem(double v, double lo, double hi, Bound bound, bool integer) {
  if (!std::isfinite(v)) return fmt::format("{} is not a finite number", v);
  const bool low_ok = bound == Bound::open_low ? v > lo : v >= lo;
  if (low_ok && v <= hi && (!integer || v == std::floor(v))) return "";
  return fmt::format("{} is outside {}", v, range_text(lo, hi, bound, integer));
}

}  // namespace

void SettingList::add(const std::string& option, int64_t& value, int64_t lo, int64_t hi, std::string help) {
  items_.push_back({option, key_of(option), std::move(help), &value, static_cast<double>(lo), static_cast<double>(hi),
                    Bound::closed});
}

void SettingList::add(const std::string& option, float& value, double lo, double hi, std::string help, Bound bound) {
  items_.push_back({option, key_of(option), std::move(help), &value, lo, hi, bound});
}

void SettingList::add(const std::string& option, double& value, double lo, double hi, std::string help, Bound bound) {
  items_.push_back({option, key_of(option), std::move(help), &value, lo, hi, bound});
}

void SettingList::add_flag(const std::string& option, bool& value, std::string help) {
  items_.push_back({option, key_of(option), std::move(help), &value, 0, 0, Bound::closed});
}

void SettingList::add_check(std::function<std::string()> check) { checks_.push_back(std::move(check)); }

std::string SettingList::out_of_range(const Item& item, double v) {
  return range_problem(v, item.lo, item.hi, item.bound, is_integer(item.value));
}

void SettingList::register_options(CLI::App& app) {
  for (Item& item : items_) {
    if (auto* flag = std::get_if<bool*>(&item.value)) {
      app.add_flag(item.option, **flag, item.help);
      continue;
    }
    CLI::Option* option = nullptr;
    std::visit(
        [&](auto* p) {
          using T = std::remove_pointer_t<decltype(p)>;
          if constexpr (!std::is_same_v<T, bool>) option = app.add_option(item.option, *p, item.help);
        },
        item.value);
    const double lo = item.lo, hi = item.hi;
    const Bound bound = item.bound;
    const bool integer = is_integer(item.value);
    option->check(CLI::Validator(
        [lo, hi, bound, integer](std::string& text) {
          errno = 0;
          char* end = nullptr;
          const double v = std::strtod(text.c_str(), &end);
          if (end == text.c_str() || *end != '\0') return std::string();  // CLI11's conversion says so
          return range_problem(v, lo, hi, bound, integer);
        },
        range_text(lo, hi, bound, integer)));
    option->capture_default_str();
  }
}

nlohmann::json SettingList::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (const Item& item : items_) std::visit([&](auto* p) { j[item.key] = *p; }, item.value);
  return j;
}

void SettingList::from_json(const nlohmann::json& saved, const std::string& file) {
  if (!saved.is_object()) throw Error(file, "the saved settings are not a JSON object");
  for (size_t k = 0; k < items_.size(); ++k) {
    Item& item = items_[k];
    auto it = saved.find(item.key);
    if (it == saved.end() && k >= newer_from_) continue;
    if (it == saved.end()) throw Error(file, fmt::format("the saved settings have no '{}'", item.key));
    const nlohmann::json& v = *it;
    auto bad = [&](const std::string& problem) {
      return Error(file, fmt::format("saved setting '{}': {}", item.key, problem));
    };
    if (auto* b = std::get_if<bool*>(&item.value)) {
      if (!v.is_boolean()) throw bad("not true or false");
      **b = v.get<bool>();
    } else if (auto* i = std::get_if<int64_t*>(&item.value)) {
      if (!v.is_number_integer()) throw bad(fmt::format("{} is not an integer", v.dump()));
      if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
        throw bad(fmt::format("{} is too large", v.dump()));
      const int64_t x = v.get<int64_t>();
      std::string problem = out_of_range(item, static_cast<double>(x));
      if (!problem.empty()) throw bad(problem);
      **i = x;
    } else {
      if (!v.is_number()) throw bad(fmt::format("{} is not a number", v.dump()));
      const double x = v.get<double>();
      std::string problem = out_of_range(item, x);
      if (problem.empty() && std::holds_alternative<float*>(item.value) && !std::isfinite(static_cast<float>(x)))
        problem = fmt::format("{} is too large", x);
      if (!problem.empty()) throw bad(problem);
      if (auto* f = std::get_if<float*>(&item.value))
        **f = static_cast<float>(x);
      else
        *std::get<double*>(item.value) = x;
    }
  }
  for (const auto& c : checks_) {
    std::string problem = c();
    if (!problem.empty()) throw Error(file, fmt::format("the saved settings: {}", problem));
  }
}

void SettingList::check() const {
  for (const auto& c : checks_) {
    std::string problem = c();
    if (!problem.empty()) throw UsageError(problem);
  }
}

std::vector<std::string> SettingList::options(std::vector<std::string> others) const {
  std::vector<std::string> names;
  for (const Item& item : items_)
    names.push_back(item.option);
  names.insert(names.end(), others.begin(), others.end());
  return names;
}

}  // namespace gen
