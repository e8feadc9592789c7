#include "backends/api/registry.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace videotask::backends {

EnvReader ProcessEnv() {
  return [](absl::string_view name) {
    const char* value = std::getenv(std::string(name).c_str());
    return std::string(value == nullptr ? "" : value);
  };
}

absl::Status BackendRegistry::Add(BackendDescriptor descriptor) {
  if (descriptor.name.empty() || !descriptor.configure) {
    return absl::InvalidArgumentError("a backend descriptor needs a name and a configure function");
  }
  for (const BackendDescriptor& d : descriptors_) {
    if (d.name == descriptor.name) {
      return absl::AlreadyExistsError(
          absl::StrCat("backend \"", descriptor.name, "\" is already registered"));
    }
  }
  descriptors_.push_back(std::move(descriptor));
  return absl::OkStatus();
}

absl::StatusOr<const BackendDescriptor*> BackendRegistry::Find(absl::string_view name) const {
  for (const BackendDescriptor& d : descriptors_) {
    if (d.name == name) return &d;
  }
  return absl::NotFoundError(
      absl::StrCat("unknown backend \"", name, "\"; known: ", absl::StrJoin(Names(), ", ")));
}

std::vector<std::string> BackendRegistry::Names() const {
  std::vector<std::string> names;
  for (const BackendDescriptor& d : descriptors_) names.push_back(d.name);
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> BackendRegistry::DefaultNames(const EnvReader& env) const {
  std::vector<std::string> names;
  for (const BackendDescriptor& d : descriptors_) {
    if (d.default_enabled == DefaultEnabled::kWhenSecretSet && !d.secret_env.empty() &&
        !env(d.secret_env).empty()) {
      names.push_back(d.name);
    }
  }
  for (const BackendDescriptor& d : descriptors_) {
    if (d.default_enabled == DefaultEnabled::kAlways) names.push_back(d.name);
  }
  return names;
}

absl::StatusOr<std::vector<BackendSetup>> BackendRegistry::Configure(
    const std::vector<std::string>& names, const BackendConfig& base, const EnvReader& env) const {
  std::vector<BackendSetup> setups;
  for (const std::string& name : names) {
    absl::StatusOr<const BackendDescriptor*> found = Find(name);
    if (!found.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--backends names \"", name,
                                                     "\"; known backends: ",
                                                     absl::StrJoin(Names(), ", ")));
    }
    const BackendDescriptor& d = **found;
    if (!d.secret_env.empty() && env(d.secret_env).empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("backend ", d.name, " needs the ", d.secret_env,
                       " environment variable (the API key); it is not set"));
    }
    BackendConfig config = base;
    config.name = d.name;
    absl::StatusOr<BackendSetup> setup = d.configure(config, env);
    if (!setup.ok()) return setup.status();
    const BackendConfig& bc = setup->config;
    if (bc.max_concurrency < 1) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, "_max_concurrency must be >= 1"));
    }
    if (bc.min_submit_interval < absl::ZeroDuration() || bc.poll_interval < absl::ZeroDuration()) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, "_* durations must be >= 0"));
    }
    if (!(bc.daily_budget_usd >= 0) || !std::isfinite(bc.daily_budget_usd)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, "_daily_budget_usd must be a number >= 0 (0 = no limit)"));
    }
    setup->needs_http = setup->needs_http || d.needs_http;
    setups.push_back(*std::move(setup));
  }
  return setups;
}

}  // namespace videotask::backends
