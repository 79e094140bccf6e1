// The settings of a training run, declared once. Each setting is at the same time a command-line
// option, a key of the settings a checkpoint saves (and --resume restores), and a range that
// both are checked against: a value typed on the command line and a value read back from a file
// pass the same test, and NaN or an infinity passes neither.
//
//   gen::SettingList list;
//   list.add("--batch", s.batch, 1, 1 << 16, "Sequences per step");    // saved as "batch"
//   list.add("--lr", s.lr, 0.0, 10.0, "Peak learning rate", gen::Bound::open_low);
//   list.register_options(app);             // CLI11 options with the range checks
//   nlohmann::json saved = list.to_json();  // into the checkpoint
//   list.from_json(saved, "lm.st");         // back: every key present, every value in range;
//                                           // throws Error("lm.st", "setting 'batch' ...")
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace CLI {
class App;
}

namespace gen {

// Whether a range's ends belong to it.
enum class Bound { closed, open_low };

class SettingList {
 public:
  // An integer setting in [lo, hi], saved under the option's name without dashes ("--decay-steps":
  // "decay_steps").
  void add(const std::string& option, int64_t& value, int64_t lo, int64_t hi, std::string help);
  // A number in [lo, hi] (or (lo, hi] with Bound::open_low); finite.
  void add(const std::string& option, float& value, double lo, double hi, std::string help,
           Bound bound = Bound::closed);
  void add(const std::string& option, double& value, double lo, double hi, std::string help,
           Bound bound = Bound::closed);
  // A flag (saved as true or false).
  void add_flag(const std::string& option, bool& value, std::string help);
  // The settings added from here on are newer than some checkpoints: a saved file without one
  // keeps its value as it is; the caller resets the settings to their defaults before
  // from_json (what those older runs did), not to the command line's values.
  void newer_from_here() { newer_from_ = items_.size(); }
  // A check between settings ("--min-lr is above --lr"): returns the problem, or "" if none.
  void add_check(std::function<std::string()> check);

  // Adds the options to app, each with its range check (the default shown in --help).
  void register_options(CLI::App& app);
  // The values as a JSON object.
  nlohmann::json to_json() const;
  // Sets every value from saved (each key must be there, of the right type, in range) and runs
  // the checks; errors name `file` and the setting.
  void from_json(const nlohmann::json& saved, const std::string& file);
  // Runs the checks on the current values (after the command line); throws UsageError.
  void check() const;
  // The options' names ("--batch", ...), followed by `others`.
  std::vector<std::string> options(std::vector<std::string> others = {}) const;

 private:
  struct Item {
    std::string option, key, help;
    std::variant<int64_t*, float*, double*, bool*> value;
    double lo = 0, hi = 0;
    Bound bound = Bound::closed;
  };
  // "" if v is inside the item's range, else the problem ("is outside 1..65536").
  static std::string out_of_range(const Item& item, double v);
  std::vector<Item> items_;
  size_t newer_from_ = SIZE_MAX;
  std::vector<std::function<std::string()>> checks_;
};


}  // namespace gen
