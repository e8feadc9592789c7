// submit and submit-dir: read images locally, send them inline in one
// BatchSubmitTasks (split only when the bytes would not fit one message),
// then optionally follow the tasks and download the videos.
#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "client/cli/commands.h"
#include "client/cli/follow.h"
#include "client/cli/inputs.h"
#include "client/cli/output.h"
#include "common/files.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace videotask::cli {
namespace {

// Inline image bytes per BatchSubmitTasks call: videotaskd accepts messages of
// at least 64 MiB, so a usual folder goes in one call; a larger one is sent in
// several, in order.
constexpr int64_t kBatchBudgetBytes = 48 << 20;
constexpr size_t kBatchMaxRequests = 1000;
constexpr int64_t kMaxPromptFileBytes = 1 << 20;

struct SpecFlags {
  std::string prompt;
  std::string prompt_file;
  std::string model;
  std::string ratio;
  int duration = 0;
  int64_t seed = -1;
  std::string backend;
  std::vector<std::string> labels;
  std::vector<std::string> model_options;
  int priority = 0;
  std::string notify_url;
  std::vector<std::string> notify_events;
  bool dry_run = false;
  bool reuse = false;
  bool wait = false;
  std::string output_dir;
};

void AddSpecFlags(CLI::App* cmd, SpecFlags& f) {
  auto* prompt = cmd->add_option("-p,--prompt", f.prompt, "What should happen in the video");
  auto* file = cmd->add_option("--prompt-file", f.prompt_file, "Read the prompt from this file")
                   ->check(CLI::ExistingFile);
  prompt->excludes(file);
  cmd->add_option("--model", f.model, "Model of the backend (default: the backend's default)");
  cmd->add_option("--ratio", f.ratio, "Output ratio: 1280:720 or an alias such as 16:9");
  cmd->add_option("--duration", f.duration, "Seconds of video (0 = the model's default)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", f.seed, "Provider seed, 0..4294967295 (default: random)")
      ->check(CLI::Range(int64_t{0}, int64_t{4294967295}));
  cmd->add_option("--backend", f.backend, "Backend name, as `videotask backends` lists them");
  cmd->add_option("-l,--label", f.labels, "A label key=value (repeatable); mock.* script the mock backend")
      ->allow_extra_args(false);
  cmd->add_option("-O,--model-option", f.model_options,
                  "A model input key=value (repeatable), e.g. negative_prompt=blur; "
                  "`videotask backends` lists each model's options")
      ->allow_extra_args(false);
  cmd->add_option("--priority", f.priority, "-100..100, higher runs first");
  cmd->add_option("--notify_url", f.notify_url,
                  "POST signed webhooks about each task here (https://; see the server's "
                  "--webhook_allow_hosts)");
  cmd->add_option("--notify_event", f.notify_events,
                  "An event to add to the default ones (repeatable): task.running")
      ->allow_extra_args(false);
  cmd->add_flag("--dry-run", f.dry_run,
                "Validate on the server and show what would be sent; store nothing");
  cmd->add_flag("--reuse", f.reuse,
                "Take the result of an identical task (same backend, model, image, prompt, "
                "ratio, duration, seed and model options) submitted with --reuse before, or "
                "wait for it, instead of paying for it again");
  cmd->add_flag("-w,--wait", f.wait, "Follow the tasks with live progress until they end");
  cmd->add_option("-o,--output", f.output_dir,
                  "Download each finished video to DIR/<stub>.mp4 (implies --wait)");
}

absl::StatusOr<std::string> DefaultPrompt(const SpecFlags& f) {
  if (!f.prompt_file.empty()) {
    auto text = ReadFile(f.prompt_file, kMaxPromptFileBytes);
    if (!text.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--prompt-file: ", text.status().message()));
    }
    return TrimPrompt(*text);
  }
  return f.prompt;
}

absl::StatusOr<v1::TaskSpec> BaseSpec(const SpecFlags& f) {
  v1::TaskSpec spec;
  spec.set_model(f.model);
  spec.set_ratio(f.ratio);
  spec.set_duration_seconds(f.duration);
  if (f.seed >= 0) spec.set_seed(static_cast<uint32_t>(f.seed));
  spec.set_backend(f.backend);
  spec.set_priority(f.priority);
  spec.set_notify_url(f.notify_url);
  for (const std::string& event : f.notify_events) spec.add_notify_events(event);
  VT_ASSIGN_OR_RETURN(auto labels, ParseLabels(f.labels));
  for (const auto& [k, v] : labels) (*spec.mutable_labels())[k] = v;
  VT_ASSIGN_OR_RETURN(auto options, ParseLabels(f.model_options, "--model-option"));
  for (const auto& [k, v] : options) (*spec.mutable_model_options())[k] = v;
  return spec;
}

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// One image on its way to a task.
struct Item {
  std::string image_path;
  std::string image_sha256;
  int64_t image_bytes = 0;
  v1::SubmitTaskRequest request;
  bool has_result = false;
  v1::Task task;
  bool has_task = false;
  v1::Error error;
  std::string file;            // downloaded video
  absl::Status download_status;
};

absl::StatusOr<Item> ReadItem(const std::string& path, const v1::TaskSpec& base,
                              const std::string& prompt) {
  auto content = ReadFile(path, kMaxImageFileBytes);
  if (!content.ok()) {
    return absl::Status(content.status().code(),
                        absl::StrCat("image ", path, ": ", content.status().message()));
  }
  Item item;
  item.image_path = path;
  item.image_bytes = static_cast<int64_t>(content->size());
  item.image_sha256 = Sha256Hex(*content);
  v1::TaskSpec* spec = item.request.mutable_spec();
  *spec = base;
  spec->set_prompt_text(prompt);
  spec->mutable_image()->set_filename(BaseName(path));
  spec->mutable_image()->set_content(*std::move(content));
  return item;
}

// Sends every request, in order, in as few BatchSubmitTasks calls as fit.
absl::Status SendBatches(Connection& connection, std::vector<Item>& items) {
  size_t next = 0;
  while (next < items.size()) {
    v1::BatchSubmitTasksRequest batch;
    int64_t bytes = 0;
    size_t end = next;
    while (end < items.size() && batch.requests_size() < static_cast<int>(kBatchMaxRequests)) {
      int64_t size = items[end].image_bytes;
      if (batch.requests_size() > 0 && bytes + size > kBatchBudgetBytes) break;
      *batch.add_requests() = items[end].request;
      bytes += size;
      ++end;
    }
    v1::BatchSubmitTasksResponse response;
    auto ctx = connection.NewContext();
    VT_RETURN_IF_ERROR(FromGrpc(connection.stub().BatchSubmitTasks(ctx.get(), batch, &response)));
    if (response.results_size() != batch.requests_size()) {
      return absl::InternalError(absl::StrCat("server answered ", response.results_size(),
                                              " results for ", batch.requests_size(), " requests"));
    }
    for (int i = 0; i < response.results_size(); ++i) {
      Item& item = items[next + i];
      const v1::BatchSubmitResult& result = response.results(i);
      item.has_result = true;
      item.has_task = result.has_task() && !result.has_error();
      if (item.has_task) item.task = result.task();
      if (result.has_error()) item.error = result.error();
    }
    next = end;
  }
  return absl::OkStatus();
}

std::string ItemErrorText(const Item& item) {
  return absl::StrCat(item.error.code(), ": ", item.error.message());
}

std::string StateOrError(const Item& item) {
  if (!item.has_task) return ItemErrorText(item);
  std::string text = StateName(item.task.state());
  std::string error = TaskErrorText(item.task);
  if (!error.empty()) absl::StrAppend(&text, " (", error, ")");
  return text;
}

nlohmann::ordered_json ItemJson(const Item& item, bool dry_run) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  out["image"] = item.image_path;
  out["image_bytes"] = item.image_bytes;
  out["image_sha256"] = item.image_sha256;
  out["request_id"] = item.request.request_id();
  if (dry_run) {
    v1::SubmitTaskRequest shown = item.request;
    shown.mutable_spec()->mutable_image()->clear_content();  // the bytes: see image_*
    out["request"] = ProtoToJson(shown);
  }
  if (item.has_task) {
    out["task"] = ProtoToJson(item.task);
  } else if (item.has_result) {
    out["error"] = ProtoToJson(item.error);
  }
  if (!item.file.empty()) out["file"] = item.file;
  if (!item.download_status.ok()) out["download_error"] = std::string(item.download_status.message());
  return out;
}

void PrintDryRun(const std::vector<Item>& items, const GlobalOptions& g) {
  std::cout << "Dry run: " << items.size() << " task(s) validated by " << g.server
            << "; nothing was stored or sent to a provider.\n";
  Table table({"IMAGE", "BYTES", "STUB", "BACKEND", "MODEL", "RATIO", "DUR", "PROMPT",
               "REQUEST ID", "RESULT"});
  for (const Item& item : items) {
    const v1::TaskSpec& sent = item.request.spec();
    const v1::TaskSpec& spec = item.has_task ? item.task.spec() : sent;
    table.AddRow({item.image_path, FormatBytes(item.image_bytes),
                  item.has_task ? item.task.target_filename_stub() : "", spec.backend(),
                  spec.model(), spec.ratio(),
                  spec.duration_seconds() ? absl::StrCat(spec.duration_seconds(), "s") : "",
                  Abbreviate(sent.prompt_text(), 40), item.request.request_id(),
                  item.has_task ? "ok" : ItemErrorText(item)});
  }
  std::cout << table.Render();
}

void PrintSummary(const std::vector<Item>& items, bool with_files) {
  std::vector<std::string> header = {"IMAGE", "STUB", "TASK ID", "STATE"};
  if (with_files) header.push_back("FILE");
  Table table(header);
  for (const Item& item : items) {
    std::vector<std::string> row = {item.image_path,
                                    item.has_task ? item.task.target_filename_stub() : "-",
                                    item.has_task ? item.task.id() : "-", StateOrError(item)};
    if (with_files) {
      row.push_back(!item.download_status.ok() ? absl::StrCat("download failed: ", item.download_status.message())
                                               : item.file);
    }
    table.AddRow(std::move(row));
  }
  std::cout << table.Render();
  std::cout.flush();
}

// After the submission: dry-run report, or ids/summary, then --wait and
// --output. Returns the exit code.
int Finish(Connection& connection, const GlobalOptions& g, const SpecFlags& f,
           std::vector<Item>& items, bool summary_table) {
  int code = kExitOk;
  for (const Item& item : items) {
    if (!item.has_task) code = std::max(code, ExitCodeForErrorCode(item.error.code()));
  }
  if (f.dry_run) {
    if (g.json) {
      nlohmann::ordered_json out = {{"dry_run", true}, {"server", g.server}};
      out["results"] = nlohmann::ordered_json::array();
      for (const Item& item : items) out["results"].push_back(ItemJson(item, true));
      std::cout << out.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
    } else {
      PrintDryRun(items, g);
    }
    return code;
  }
  bool follow = f.wait || !f.output_dir.empty();
  if (!g.json) {
    if (summary_table) {
      PrintSummary(items, false);
    } else {
      for (const Item& item : items) {
        if (item.has_task) {
          std::cout << item.task.id() << "\n";
        } else {
          std::cerr << "videotask: " << item.image_path << ": " << ItemErrorText(item) << "\n";
        }
      }
      std::cout.flush();
    }
  }
  if (follow) {
    std::vector<std::string> ids;
    std::vector<size_t> index;
    for (size_t i = 0; i < items.size(); ++i) {
      if (items[i].has_task) {
        ids.push_back(items[i].task.id());
        index.push_back(i);
      }
    }
    if (!ids.empty()) {
      if (!g.json) std::cout << "\nFollowing " << ids.size() << " task(s):\n";
      auto tasks = WatchTasks(connection, ids,
                              g.json ? ProgressStyle::kQuiet : DefaultProgressStyle(false), std::cout);
      if (!tasks.ok()) return ReportError(tasks.status(), g);
      for (size_t k = 0; k < tasks->size(); ++k) items[index[k]].task = (*tasks)[k];
      code = std::max(code, ExitCodeForTasks(*tasks));
    }
    if (!f.output_dir.empty()) {
      if (absl::Status made = MakeDirs(f.output_dir); !made.ok()) return ReportError(made, g);
      for (Item& item : items) {
        if (!item.has_task || item.task.state() != v1::SUCCEEDED) continue;
        auto result = DownloadOutput(connection, item.task.id(), "", f.output_dir);
        if (result.ok()) {
          item.file = result->path;
        } else {
          item.download_status = result.status();
          code = std::max(code, ExitCodeFor(result.status()));
        }
      }
    }
  }
  if (g.json) {
    nlohmann::ordered_json out = {{"server", g.server}};
    out["results"] = nlohmann::ordered_json::array();
    for (const Item& item : items) out["results"].push_back(ItemJson(item, false));
    std::cout << out.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
  } else if (follow) {
    std::cout << "\n";
    PrintSummary(items, !f.output_dir.empty());
  }
  return code;
}

// --- submit -----------------------------------------------------------------

struct SubmitFlags {
  std::vector<std::string> images;
  std::string request_id;
  SpecFlags spec;
};

int RunSubmit(const GlobalOptions& g, const SubmitFlags& f) {
  auto prompt = DefaultPrompt(f.spec);
  if (!prompt.ok()) return ReportError(prompt.status(), g);
  auto base = BaseSpec(f.spec);
  if (!base.ok()) return ReportError(base.status(), g);
  std::vector<Item> items;
  for (size_t i = 0; i < f.images.size(); ++i) {
    auto item = ReadItem(f.images[i], *base, *prompt);
    if (!item.ok()) return ReportError(item.status(), g);
    if (!f.request_id.empty()) {
      item->request.set_request_id(f.images.size() == 1 ? f.request_id
                                                        : absl::StrCat(f.request_id, "-", i + 1));
    }
    item->request.set_validate_only(f.spec.dry_run);
    if (f.spec.reuse) item->request.set_reuse(v1::REUSE_IDENTICAL);
    items.push_back(*std::move(item));
  }
  auto connection = Connection::Create(g);
  if (!connection.ok()) return ReportError(connection.status(), g);
  if (absl::Status sent = SendBatches(**connection, items); !sent.ok()) return ReportError(sent, g);
  return Finish(**connection, g, f.spec, items, /*summary_table=*/false);
}

// --- submit-dir ---------------------------------------------------------------

struct SubmitDirFlags {
  std::string dir;
  int max_videos = 0;
  std::string manifest;
  SpecFlags spec;
};

int RunSubmitDir(const GlobalOptions& g, const SubmitDirFlags& f) {
  auto names = ListImages(f.dir);
  if (!names.ok()) return ReportError(names.status(), g);
  if (names->empty()) {
    return ReportError(absl::InvalidArgumentError(absl::StrCat(
                           "DIR: no PNG, JPEG or WebP images in ", f.dir)),
                       g);
  }
  std::map<std::string, std::string> manifest_prompts;
  if (!f.manifest.empty()) {
    auto text = ReadFile(f.manifest, 16 << 20);
    if (!text.ok()) {
      return ReportError(absl::InvalidArgumentError(absl::StrCat("--manifest: ", text.status().message())), g);
    }
    auto rows = ParseManifestCsv(*text);
    if (!rows.ok()) return ReportError(rows.status(), g);
    for (const ManifestRow& row : *rows) {
      std::string name = BaseName(row.image);
      if (!std::binary_search(names->begin(), names->end(), name)) {
        return ReportError(absl::InvalidArgumentError(absl::StrCat(
                               "--manifest: line ", row.line, ": image \"", row.image,
                               "\" is not a PNG, JPEG or WebP file in ", f.dir)),
                           g);
      }
      manifest_prompts[name] = row.prompt;
    }
  }
  if (f.max_videos > 0 && names->size() > static_cast<size_t>(f.max_videos)) {
    names->resize(f.max_videos);
  }
  auto default_prompt = DefaultPrompt(f.spec);
  if (!default_prompt.ok()) return ReportError(default_prompt.status(), g);
  auto base = BaseSpec(f.spec);
  if (!base.ok()) return ReportError(base.status(), g);

  std::vector<Item> items;
  std::vector<std::string> missing;
  for (const std::string& name : *names) {
    std::string path = absl::StrCat(absl::StripSuffix(f.dir, "/"), "/", name);
    std::string prompt;
    if (auto it = manifest_prompts.find(name); it != manifest_prompts.end()) {
      prompt = it->second;
    } else if (auto sidecar = ReadFile(absl::StrCat(f.dir, "/", SidecarName(name)), kMaxPromptFileBytes);
               sidecar.ok()) {
      prompt = TrimPrompt(*sidecar);
    } else {
      prompt = *default_prompt;
    }
    if (prompt.empty()) {
      missing.push_back(name);
      continue;
    }
    auto item = ReadItem(path, *base, prompt);
    if (!item.ok()) return ReportError(item.status(), g);
    item->request.set_request_id(StableRequestId(item->request.spec().image().content(), item->request.spec()));
    item->request.set_validate_only(f.spec.dry_run);
    if (f.spec.reuse) item->request.set_reuse(v1::REUSE_IDENTICAL);
    items.push_back(*std::move(item));
  }
  if (!missing.empty()) {
    std::string list;
    for (const auto& name : missing) absl::StrAppend(&list, list.empty() ? "" : ", ", name);
    return ReportError(absl::InvalidArgumentError(absl::StrCat(
                           "prompt: none for ", list,
                           "; give --prompt, --prompt-file, a sidecar NAME.txt or a --manifest row")),
                       g);
  }
  auto connection = Connection::Create(g);
  if (!connection.ok()) return ReportError(connection.status(), g);
  if (absl::Status sent = SendBatches(**connection, items); !sent.ok()) return ReportError(sent, g);
  return Finish(**connection, g, f.spec, items, /*summary_table=*/true);
}

}  // namespace

void AddSubmitCommands(CLI::App& app, std::vector<Command>& commands) {
  auto submit_flags = std::make_shared<SubmitFlags>();
  CLI::App* submit = app.add_subcommand("submit", "Submit one task per image (bytes sent inline)");
  submit->add_option("IMAGE", submit_flags->images, "PNG, JPEG or WebP files")
      ->required()
      ->check(CLI::ExistingFile);
  AddSpecFlags(submit, submit_flags->spec);
  submit->add_option("--request-id", submit_flags->request_id,
                     "Idempotency key; with several images each gets ID-1, ID-2, ...");
  submit->footer(R"(Prints one task id per line.

Examples:
  videotask submit shot_01_draft.png --prompt "slow zoom in, cinematic lighting"
  videotask submit a.png b.png --prompt-file prompt.txt --ratio 16:9 --duration 5 --wait
  videotask submit a.png -p "pan left" --label mock.latency_ms=2000 --output out/
  ID=$(videotask submit a.png -p "pan left" --request-id nightly-42) && videotask wait "$ID")");
  commands.push_back({submit, [submit_flags](const GlobalOptions& g) { return RunSubmit(g, *submit_flags); }});

  auto dir_flags = std::make_shared<SubmitDirFlags>();
  CLI::App* dir = app.add_subcommand(
      "submit-dir", "Submit every image of a folder, each with its prompt (the batch workflow)");
  dir->add_option("DIR", dir_flags->dir, "Folder of PNG, JPEG and WebP images, taken in name order")
      ->required()
      ->check(CLI::ExistingDirectory);
  dir->add_option("-n,--max-videos", dir_flags->max_videos, "Submit at most N images (0 = all)")
      ->check(CLI::NonNegativeNumber);
  dir->add_option("--manifest", dir_flags->manifest,
                  "CSV file of image,prompt rows; its prompts win over sidecars and --prompt")
      ->check(CLI::ExistingFile);
  AddSpecFlags(dir, dir_flags->spec);
  dir->footer(R"(Prompt of each image: its --manifest row, else a sidecar NAME.txt beside the
image (shot_01.png -> shot_01.txt), else --prompt / --prompt-file.
Each request id is derived from the image bytes and the options, so running
the same command again returns the tasks it created the first time.

Examples:
  videotask submit-dir video_queue --max-videos 3 --prompt "slow zoom in, cinematic lighting" --wait --output out/
  videotask submit-dir video_queue --manifest prompts.csv --dry-run
  videotask --json submit-dir video_queue -p "pan left" | jq -r '.results[].task.id')");
  commands.push_back({dir, [dir_flags](const GlobalOptions& g) { return RunSubmitDir(g, *dir_flags); }});
}

}  // namespace videotask::cli
