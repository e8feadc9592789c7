// What the subcommands share: opening the connection, printing JSON, and
// running one call per task id.
#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "client/cli/commands.h"

namespace videotask::cli {

void PrintJson(const nlohmann::ordered_json& value) {
  std::cout << value.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
}

std::unique_ptr<Connection> Connect(const GlobalOptions& g, int& code) {
  auto connection = Connection::Create(g);
  if (!connection.ok()) {
    code = ReportError(connection.status(), g);
    return nullptr;
  }
  return *std::move(connection);
}

int RunForEachId(const GlobalOptions& g, const std::vector<std::string>& ids,
                 const std::function<absl::StatusOr<IdOutcome>(const std::string& id)>& call) {
  nlohmann::ordered_json out = {{"results", nlohmann::ordered_json::array()}};
  int worst = kExitOk;
  for (const std::string& id : ids) {
    absl::StatusOr<IdOutcome> outcome = call(id);
    nlohmann::ordered_json result = {{"id", id}};
    if (!outcome.ok()) {
      worst = std::max(worst, ReportError(outcome.status(), g));
      result["error"] = {{"code", absl::StatusCodeToString(outcome.status().code())},
                         {"message", std::string(outcome.status().message())}};
    } else if (g.json) {
      result.update(outcome->json);
    } else {
      std::cout << outcome->line << "\n";
    }
    if (g.json) out["results"].push_back(std::move(result));
  }
  if (g.json) PrintJson(out);
  return worst;
}

}  // namespace videotask::cli
