// videotask-bench: closed-loop load on a VideoTaskService server.
//   videotask-bench --target=127.0.0.1:50051 --mode=submit --in_flight=64 --image_bytes=1024
//   videotask-bench --target=vt.internal:50051 --tls_ca=ca.pem --token=... --mode=list
// Prints a summary for people on stderr and one "RESULT key=value ..." line
// on stdout for scripts.
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "client/loadgen/loadgen.h"

namespace {

int Run(int argc, char** argv) {
  using videotask::loadgen::LoadOptions;
  LoadOptions options;
  std::string mode = "submit";
  double warmup_s = 2, duration_s = 10, timeout_s = 30;
  std::vector<std::string> labels;
  bool same_image = false;
  std::vector<std::string> server_pids;

  CLI::App app{"videotask-bench: closed-loop load generator for VideoTaskService"};
  app.add_option("--target", options.channel.target, "Server address host:port")->required();
  app.add_flag("--tls", options.channel.tls, "Use TLS (system roots unless --tls_ca)");
  app.add_option("--tls_ca", options.channel.tls_ca_file,
                 "PEM file of the roots to trust (implies --tls)");
  app.add_option("--token", options.channel.token, "Bearer token sent with every call")
      ->envname("VIDEOTASK_TOKEN");
  options.channel.flags = {"--target", "--tls", "--tls_ca", "--token"};
  app.add_option("--mode", mode, "submit | batch | get | list | e2e")->capture_default_str();
  app.add_option("--in_flight", options.in_flight, "Calls outstanding at once")
      ->capture_default_str();
  app.add_option("--channels", options.channels, "Separate connections")->capture_default_str();
  app.add_option("--warmup", warmup_s, "Seconds not counted at the start")->capture_default_str();
  app.add_option("--duration", duration_s, "Seconds measured")->capture_default_str();
  app.add_option("--max_items", options.max_items,
                 "Instead of a timed run: stop after this many items (fills a queue)");
  app.add_option("--image_bytes", options.image_bytes, "Size of each inline PNG")
      ->capture_default_str();
  app.add_option("--batch_size", options.batch_size, "Requests per BatchSubmitTasks call")
      ->capture_default_str();
  app.add_option("--page_size", options.page_size, "ListTasks page size")->capture_default_str();
  app.add_option("--list_depth", options.list_depth,
                 "Pages followed before starting again at the first")
      ->capture_default_str();
  app.add_option("--backend", options.backend, "spec.backend of submitted tasks");
  app.add_option("--label", labels, "spec.labels entry key=value (repeatable)");
  app.add_option("--rpc_timeout", timeout_s, "Deadline of each call, seconds")
      ->capture_default_str();
  app.add_option("--server_pid", server_pids,
                 "Server process on this machine whose CPU per op to report (repeatable, "
                 "or a comma list; summed)");
  app.add_flag("--same_image", same_image, "Send the same image bytes in every submit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  auto parsed_mode = videotask::loadgen::ParseMode(mode);
  if (!parsed_mode.ok()) {
    std::cerr << "--mode: " << parsed_mode.status().message() << "\n";
    return 2;
  }
  options.mode = *parsed_mode;
  options.warmup = absl::Seconds(warmup_s);
  options.duration = absl::Seconds(duration_s);
  options.rpc_timeout = absl::Seconds(timeout_s);
  options.unique_images = !same_image;
  for (const std::string& label : labels) {
    std::vector<std::string> kv = absl::StrSplit(label, absl::MaxSplits('=', 1));
    if (kv.size() != 2 || kv[0].empty()) {
      std::cerr << "--label must be key=value, got \"" << label << "\"\n";
      return 2;
    }
    options.labels[kv[0]] = kv[1];
  }
  for (const std::string& list : server_pids) {
    for (absl::string_view pid : absl::StrSplit(list, ',', absl::SkipEmpty())) {
      int n = 0;
      if (!absl::SimpleAtoi(pid, &n) || n <= 0) {
        std::cerr << "--server_pid must be a process id, got \"" << pid << "\"\n";
        return 2;
      }
      if (!videotask::loadgen::ProcessCpuMicros(n).ok()) {
        std::cerr << "--server_pid: cannot read /proc/" << n << "/stat\n";
        return 2;
      }
      options.server_pids.push_back(n);
    }
  }
  auto result = videotask::loadgen::RunLoad(options);
  if (!result.ok()) {
    std::cerr << "videotask-bench: " << result.status().message() << "\n";
    return 1;
  }
  std::cerr << videotask::loadgen::FormatSummary(options, *result);
  std::cout << videotask::loadgen::FormatResultLine(options, *result) << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
