#include "backends/api/backend.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace videotask::backends {

absl::Status BackendRegistry::Add(std::unique_ptr<BackendFactory> factory) {
  std::string name(factory->name());
  if (factories_.count(name) != 0) {
    return absl::AlreadyExistsError(absl::StrCat("backend \"", name, "\" is already registered"));
  }
  factories_.emplace(std::move(name), std::move(factory));
  return absl::OkStatus();
}

absl::StatusOr<const BackendFactory*> BackendRegistry::Find(absl::string_view name) const {
  auto it = factories_.find(name);
  if (it == factories_.end()) {
    return absl::NotFoundError(absl::StrCat("unknown backend \"", name,
                                            "\"; known: ", absl::StrJoin(Names(), ", ")));
  }
  return it->second.get();
}

std::vector<std::string> BackendRegistry::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, factory] : factories_) names.push_back(name);
  return names;
}

}  // namespace videotask::backends
