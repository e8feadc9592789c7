#include "tests/metrics/scrape.h"

#include <httplib.h>

#include <cstdlib>

namespace videotask::testing {

HttpAnswer HttpGet(int port, const std::string& path, const std::string& token) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(10, 0);
  httplib::Headers headers;
  if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
  httplib::Result result = client.Get(path.c_str(), headers);
  HttpAnswer answer;
  if (!result) return answer;
  answer.status = result->status;
  answer.body = result->body;
  return answer;
}

std::map<std::string, double> ParseMetrics(const std::string& text) {
  std::map<std::string, double> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty() || line[0] == '#') continue;
    size_t space = line.rfind(' ');
    if (space == std::string::npos) continue;
    out[line.substr(0, space)] = std::strtod(line.c_str() + space + 1, nullptr);
  }
  return out;
}

std::set<std::string> SeriesOf(const std::map<std::string, double>& metrics) {
  std::set<std::string> out;
  for (const auto& [series, value] : metrics) out.insert(series);
  return out;
}

double ValueOf(const std::map<std::string, double>& metrics, const std::string& series) {
  auto it = metrics.find(series);
  return it == metrics.end() ? 0 : it->second;
}

double SumOf(const std::map<std::string, double>& metrics, const std::string& name,
             const std::set<std::string>& match) {
  double sum = 0;
  for (const auto& [series, value] : metrics) {
    if (series.compare(0, name.size(), name) != 0) continue;
    if (series.size() > name.size() && series[name.size()] != '{') continue;
    bool all = true;
    for (const std::string& m : match) all = all && series.find(m) != std::string::npos;
    if (all) sum += value;
  }
  return sum;
}

}  // namespace videotask::testing
