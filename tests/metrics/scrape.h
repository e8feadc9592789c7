// Reading /metrics in tests: a GET over loopback and the Prometheus text
// format parsed into series -> value.
#ifndef VIDEOTASK_TESTS_METRICS_SCRAPE_H_
#define VIDEOTASK_TESTS_METRICS_SCRAPE_H_

#include <map>
#include <set>
#include <string>

namespace videotask::testing {

struct HttpAnswer {
  int status = 0;  // 0 = no answer (connection refused, ...)
  std::string body;
};

// GET http://127.0.0.1:<port><path>, with a bearer token when not empty.
HttpAnswer HttpGet(int port, const std::string& path, const std::string& token = "");

// `name{labels}` -> value, from the text format (comments skipped).
std::map<std::string, double> ParseMetrics(const std::string& text);

// The series names with labels, without values.
std::set<std::string> SeriesOf(const std::map<std::string, double>& metrics);

// The value of a series, 0 when absent.
double ValueOf(const std::map<std::string, double>& metrics, const std::string& series);

// The sum over series of `name` whose labels contain every `label="v"` of
// `match` (e.g. "backend=\"mock\"").
double SumOf(const std::map<std::string, double>& metrics, const std::string& name,
             const std::set<std::string>& match = {});

}  // namespace videotask::testing

#endif  // VIDEOTASK_TESTS_METRICS_SCRAPE_H_
