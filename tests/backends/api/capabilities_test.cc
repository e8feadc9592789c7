// The generic check of spec.model_options against a model's declarations.
#include "backends/api/capabilities.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace videotask::backends {
namespace {

using ::testing::HasSubstr;
using Type = ModelOption::Type;

ModelCapabilities ModelWithOptions() {
  ModelCapabilities m;
  m.name = "owner/model";
  m.options = {
      {"negative_prompt", Type::kString, "what to avoid", {}, 0, 0, 10},
      {"cfg_scale", Type::kNumber, "prompt adherence", {}, 0, 1, 0},
      {"steps", Type::kInteger, "", {}, 1, 50, 0},
      {"loop", Type::kBoolean, "", {}, 0, 0, 0},
      {"mode", Type::kEnum, "", {"std", "pro"}, 0, 0, 0},
  };
  return m;
}

absl::Status Check(std::map<std::string, std::string> options) {
  return CheckModelOptions(ModelWithOptions(), options);
}

TEST(CheckModelOptions, AcceptsValuesOfEachType) {
  EXPECT_TRUE(Check({}).ok());
  EXPECT_TRUE(Check({{"negative_prompt", "blur"},
                     {"cfg_scale", "0.5"},
                     {"steps", "50"},
                     {"loop", "true"},
                     {"mode", "pro"}})
                  .ok());
}

TEST(CheckModelOptions, UnknownKeyNamesTheKeyAndTheAllowedOnes) {
  absl::Status status = Check({{"guidance", "1"}});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("spec.model_options has key \"guidance\", which model owner/model does "
                        "not take; allowed: negative_prompt, cfg_scale, steps, loop, mode"));
  ModelCapabilities none;
  none.name = "plain";
  EXPECT_THAT(std::string(CheckModelOptions(none, {{"x", "1"}}).message()),
              HasSubstr("allowed: none"));
}

TEST(CheckModelOptions, BadValuesNameTheKeyAndWhatIsAllowed) {
  struct Case {
    std::string key, value, expected;
  } cases[] = {
      {"cfg_scale", "1.5", "spec.model_options[\"cfg_scale\"] \"1.5\" is not allowed for model "
                           "owner/model; allowed: a number in 0..1"},
      {"cfg_scale", "nan", "a number in 0..1"},
      {"steps", "2.5", "a whole number in 1..50"},
      {"steps", "0", "a whole number in 1..50"},
      {"loop", "yes", "true or false"},
      {"mode", "max", "one of: std, pro"},
      {"negative_prompt", "01234567890", "text of at most 10 bytes"},
      {"negative_prompt", "\xff", "text of at most 10 bytes"},
  };
  for (const Case& c : cases) {
    absl::Status status = Check({{c.key, c.value}});
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.key << "=" << c.value;
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.expected)) << c.key << "=" << c.value;
  }
}

TEST(CheckModelOptions, TooManyKeys) {
  std::map<std::string, std::string> many;
  for (int i = 0; i <= kMaxModelOptions; ++i) many["k" + std::to_string(i)] = "v";
  EXPECT_THAT(std::string(Check(many).message()), HasSubstr("at most 32"));
}

}  // namespace
}  // namespace videotask::backends
