// The videotask binary driven against a real videotaskd (mock backend) on a
// free loopback port, with a real SQLite file in a temp dir.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <poll.h>
#include <pty.h>

#include <atomic>
#include <cstdint>
#include <set>
#include <thread>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/files.h"
#include "common/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace videotask {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using ::videotask::testing::TempDir;
using json = nlohmann::json;

// --- a small, valid PNG ----------------------------------------------------

uint32_t Crc32(const std::string& data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : data) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return crc ^ 0xFFFFFFFFu;
}

void PutBe32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xFF));
}

void Chunk(std::string& png, const std::string& type, const std::string& data) {
  PutBe32(png, static_cast<uint32_t>(data.size()));
  std::string body = type + data;
  png += body;
  PutBe32(png, Crc32(body));
}

// A 2x2 RGB PNG of one colour; `seed` picks the colour so images differ.
std::string MakePng(uint8_t seed) {
  std::string png("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr;
  PutBe32(ihdr, 2);
  PutBe32(ihdr, 2);
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit RGB
  Chunk(png, "IHDR", ihdr);
  std::string raw;
  for (int row = 0; row < 2; ++row) {
    raw.push_back('\0');  // filter: none
    for (int px = 0; px < 2; ++px) {
      raw.push_back(static_cast<char>(seed));
      raw.push_back(static_cast<char>(255 - seed));
      raw.push_back(static_cast<char>(seed * 7));
    }
  }
  // zlib stream with one stored deflate block.
  std::string z("\x78\x01", 2);
  z.push_back('\x01');
  uint16_t len = static_cast<uint16_t>(raw.size());
  z.push_back(static_cast<char>(len & 0xFF));
  z.push_back(static_cast<char>(len >> 8));
  z.push_back(static_cast<char>(~len & 0xFF));
  z.push_back(static_cast<char>((~len >> 8) & 0xFF));
  z += raw;
  uint32_t a = 1, b = 0;
  for (unsigned char c : raw) {
    a = (a + c) % 65521;
    b = (b + a) % 65521;
  }
  PutBe32(z, (b << 16) | a);
  Chunk(png, "IDAT", z);
  Chunk(png, "IEND", "");
  return png;
}

// --- processes -------------------------------------------------------------

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadAll(const std::string& path) {
  auto text = ReadFile(path, 64 << 20);
  return text.ok() ? *text : std::string();
}

pid_t Spawn(const std::vector<std::string>& args, const std::string& out_path,
            const std::string& err_path, const std::string& server_env = "") {
  pid_t pid = fork();
  if (pid == 0) {
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int in = open("/dev/null", O_RDONLY);
    if (out < 0 || err < 0 || in < 0) _exit(127);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    unsetenv("VIDEOTASK_SERVER");
    if (!server_env.empty()) setenv("VIDEOTASK_SERVER", server_env.c_str(), 1);
    unsetenv("VIDEOTASK_TOKEN");
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

// A port on which nothing listens: bound, never listening, so a connect is
// refused for as long as `fd` stays open.
int BindWithoutListening(int& fd) {
  fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return 0;
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

// A loopback TCP proxy in front of the server that breaks the first
// connection whose server-to-client bytes carry `marker` (forwarding only
// what came before it); every later connection passes untouched.
class CuttingProxy {
 public:
  CuttingProxy(int target_port, std::string marker)
      : target_port_(target_port), marker_(std::move(marker)) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(listen_fd_, 16) != 0) {
      return;
    }
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~CuttingProxy() {
    stop_ = true;
    shutdown(listen_fd_, SHUT_RDWR);
    if (acceptor_.joinable()) acceptor_.join();
    for (auto& t : pumps_) t.join();
    close(listen_fd_);
  }

  int port() const { return port_; }
  int cuts() const { return cuts_; }

 private:
  void AcceptLoop() {
    while (!stop_) {
      int client = accept(listen_fd_, nullptr, nullptr);
      if (client < 0) return;
      pumps_.emplace_back([this, client] { Pump(client); });
    }
  }

  static bool WriteAll(int fd, const char* data, size_t size) {
    while (size > 0) {
      ssize_t n = write(fd, data, size);
      if (n <= 0) return false;
      data += n;
      size -= static_cast<size_t>(n);
    }
    return true;
  }

  void Pump(int client) {
    int server = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(target_port_));
    if (connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      std::string tail;  // last bytes sent to the client, to find a split marker
      char buf[16384];
      while (!stop_) {
        pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
        if (poll(fds, 2, 200) < 0) break;
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
          ssize_t n = read(client, buf, sizeof buf);
          if (n <= 0 || !WriteAll(server, buf, static_cast<size_t>(n))) break;
        }
        if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
          ssize_t n = read(server, buf, sizeof buf);
          if (n <= 0) break;
          std::string seen = tail + std::string(buf, static_cast<size_t>(n));
          size_t at = seen.find(marker_);
          if (at != std::string::npos && !cut_done_.exchange(true)) {
            size_t keep = at > tail.size() ? at - tail.size() : 0;
            WriteAll(client, buf, keep);
            ++cuts_;
            break;  // both sockets close: the stream breaks mid-file
          }
          if (!WriteAll(client, buf, static_cast<size_t>(n))) break;
          tail = seen.substr(seen.size() > marker_.size() ? seen.size() - marker_.size() : 0);
        }
      }
    }
    close(server);
    close(client);
  }

  const int target_port_;
  const std::string marker_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> cut_done_{false};
  std::atomic<int> cuts_{0};
  std::thread acceptor_;
  std::vector<std::thread> pumps_;  // touched by the acceptor thread, then joined
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_dir_ = tmp_.path() + "/data";
    port_file_ = tmp_.path() + "/port";
    server_log_ = tmp_.path() + "/server.log";
    work_ = tmp_.path() + "/work";
    ASSERT_TRUE(MakeDirs(work_).ok());
    server_pid_ = Spawn({VT_VIDEOTASKD_PATH, "--listen=127.0.0.1:0", "--data_dir=" + data_dir_,
                         "--port_file=" + port_file_, "--http_listen="},
                        server_log_, server_log_ + ".err");
    ASSERT_GT(server_pid_, 0);
    // The server writes the port file atomically once it serves.
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      std::string text = ReadAll(port_file_);
      if (!text.empty() && text.back() == '\n') {
        server_port_ = std::stoi(text.substr(0, text.size() - 1));
        server_ = absl::StrCat("127.0.0.1:", server_port_);
        return;
      }
      int status = 0;
      if (waitpid(server_pid_, &status, WNOHANG) == server_pid_) {
        server_pid_ = -1;
        FAIL() << "videotaskd exited early:\n" << ReadAll(server_log_ + ".err");
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    FAIL() << "videotaskd wrote no port file:\n" << ReadAll(server_log_ + ".err");
  }

  void TearDown() override {
    if (server_pid_ > 0) {
      kill(server_pid_, SIGTERM);
      int status = 0;
      waitpid(server_pid_, &status, 0);
      EXPECT_TRUE(WIFEXITED(status)) << "videotaskd did not stop cleanly";
    }
    if (HasFailure()) {
      std::cerr << "--- videotaskd stderr ---\n" << ReadAll(server_log_ + ".err");
    }
  }

  // Runs `videotask --server <this server> ARGS...`.
  CliResult Cli(const std::vector<std::string>& args) { return CliAt(server_, args); }

  CliResult CliAt(const std::string& server, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {VT_CLI_PATH, "--server", server};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string out = absl::StrCat(tmp_.path(), "/cli", ++runs_, ".out");
    std::string err = absl::StrCat(tmp_.path(), "/cli", runs_, ".err");
    pid_t pid = Spawn(argv, out, err);
    CliResult result;
    int status = 0;
    if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status)) {
      result.exit_code = WEXITSTATUS(status);
    }
    result.out = ReadAll(out);
    result.err = ReadAll(err);
    return result;
  }

  // Runs the CLI on a pseudo-terminal (as a person at a shell would) and
  // returns everything it drew.
  CliResult CliOnTerminal(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {VT_CLI_PATH, "--server", server_};
    argv.insert(argv.end(), args.begin(), args.end());
    struct winsize ws {};
    ws.ws_row = 30;
    ws.ws_col = 120;
    int master = -1;
    pid_t pid = forkpty(&master, nullptr, nullptr, &ws);
    if (pid == 0) {
      std::vector<char*> cargv;
      for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
      cargv.push_back(nullptr);
      execv(cargv[0], cargv.data());
      _exit(127);
    }
    CliResult result;
    if (pid < 0) return result;
    char buf[4096];
    while (true) {
      ssize_t n = read(master, buf, sizeof buf);
      if (n <= 0) break;  // EIO once the child has gone
      result.out.append(buf, static_cast<size_t>(n));
    }
    close(master);
    int status = 0;
    if (waitpid(pid, &status, 0) == pid && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    return result;
  }

  // --json output, parsed; fails the test when it is not JSON.
  json Json(const CliResult& result) {
    json value = json::parse(result.out, nullptr, false);
    EXPECT_FALSE(value.is_discarded()) << "not JSON:\n" << result.out << "\nstderr:\n" << result.err;
    return value;
  }

  std::string MakeImageDir(const std::string& name, const std::vector<std::string>& images) {
    std::string dir = absl::StrCat(work_, "/", name);
    EXPECT_TRUE(MakeDirs(dir).ok());
    uint8_t seed = 1;
    for (const auto& image : images) {
      EXPECT_TRUE(WriteFileAtomically(absl::StrCat(dir, "/", image), MakePng(seed++)).ok());
    }
    return dir;
  }

  std::string WriteImage(const std::string& name, uint8_t seed) {
    std::string path = absl::StrCat(work_, "/", name);
    EXPECT_TRUE(WriteFileAtomically(path, MakePng(seed)).ok());
    return path;
  }

  int CountTasks() {
    CliResult list = Cli({"--json", "list", "--all"});
    EXPECT_EQ(list.exit_code, 0) << list.err;
    json value = Json(list);
    return value.is_discarded() ? -1 : static_cast<int>(value["tasks"].size());
  }

  // Submits one image and returns its task id.
  std::string SubmitOne(const std::vector<std::string>& extra, uint8_t seed) {
    std::vector<std::string> args = {"submit", WriteImage(absl::StrCat("img", int{seed}, ".png"), seed),
                                     "--prompt", "slow zoom in"};
    args.insert(args.end(), extra.begin(), extra.end());
    CliResult r = Cli(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string id = r.out.substr(0, r.out.find('\n'));  // the first line
    EXPECT_EQ(id.size(), 26u) << r.out;
    return id;
  }

  TempDir tmp_;
  std::string data_dir_, port_file_, server_log_, work_, server_;
  int server_port_ = 0;
  pid_t server_pid_ = -1;
  int runs_ = 0;
};

TEST_F(CliTest, SubmitDirTakesMaxVideosInNameOrderWithSidecarPrompts) {
  std::string dir = MakeImageDir("queue", {"d_04.png", "b_02.png", "a_01.png", "c_03.png"});
  ASSERT_TRUE(WriteFileAtomically(dir + "/b_02.txt", "orbit around the subject\n").ok());
  CliResult r = Cli({"--json", "submit-dir", dir, "--max-videos", "3", "--prompt", "slow zoom in"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json out = Json(r);
  ASSERT_EQ(out["results"].size(), 3u);
  std::vector<std::string> images, prompts;
  for (const auto& item : out["results"]) {
    ASSERT_TRUE(item.contains("task")) << item.dump();
    EXPECT_EQ(item["task"]["id"].get<std::string>().size(), 26u);
    EXPECT_THAT(item["request_id"].get<std::string>(), StartsWith("sd-"));
    EXPECT_EQ(item["task"]["request_id"], item["request_id"]);
    images.push_back(item["task"]["spec"]["image"]["filename"]);
    prompts.push_back(item["task"]["spec"]["prompt_text"]);
  }
  EXPECT_EQ(images, (std::vector<std::string>{"a_01.png", "b_02.png", "c_03.png"}));
  EXPECT_EQ(prompts, (std::vector<std::string>{"slow zoom in", "orbit around the subject", "slow zoom in"}));
  EXPECT_EQ(CountTasks(), 3);
}

TEST_F(CliTest, SubmitDirManifestPromptsAndHumanSummary) {
  std::string dir = MakeImageDir("queue", {"hero_shot_draft.png", "wide_01.png"});
  std::string manifest = work_ + "/prompts.csv";
  ASSERT_TRUE(WriteFileAtomically(manifest, "image,prompt\nwide_01.png,\"pan left, then tilt up\"\n"
                                            "hero_shot_draft.png,dolly in\n")
                  .ok());
  CliResult r = Cli({"submit-dir", dir, "--manifest", manifest});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("IMAGE"));
  EXPECT_THAT(r.out, HasSubstr("hero_shot_video"));
  EXPECT_THAT(r.out, HasSubstr("wide_video"));

  CliResult list = Cli({"--json", "list"});
  json tasks = Json(list)["tasks"];
  std::set<std::string> prompts;
  for (const auto& task : tasks) prompts.insert(task["spec"]["prompt_text"].get<std::string>());
  EXPECT_EQ(prompts, (std::set<std::string>{"pan left, then tilt up", "dolly in"}));

  // A manifest naming an image that is not in the folder is refused.
  ASSERT_TRUE(WriteFileAtomically(manifest, "missing.png,zoom\n").ok());
  CliResult bad = Cli({"submit-dir", dir, "--manifest", manifest});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("missing.png"));
}

TEST_F(CliTest, SubmitDirWithoutAnyPromptIsAUsageError) {
  std::string dir = MakeImageDir("queue", {"a.png"});
  CliResult r = Cli({"submit-dir", dir});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("prompt"));
  EXPECT_EQ(CountTasks(), 0);
}

TEST_F(CliTest, DryRunShowsTheRequestsAndStoresNothing) {
  std::string dir = MakeImageDir("queue", {"shot_01_draft.png", "shot_02_draft.png"});
  CliResult r = Cli({"--json", "submit-dir", dir, "--prompt", "slow zoom in", "--ratio", "16:9",
                     "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json out = Json(r);
  EXPECT_EQ(out["dry_run"], true);
  ASSERT_EQ(out["results"].size(), 2u);
  for (const auto& item : out["results"]) {
    EXPECT_EQ(item["request"]["validate_only"], true);
    EXPECT_EQ(item["request"]["spec"]["prompt_text"], "slow zoom in");
    EXPECT_EQ(item["request"]["spec"]["ratio"], "16:9");
    EXPECT_GT(item["image_bytes"].get<int64_t>(), 0);
    ASSERT_TRUE(item.contains("task")) << item.dump();
    EXPECT_EQ(item["task"]["id"], "");
    EXPECT_EQ(item["task"]["spec"]["ratio"], "1280:720");  // resolved by the server
  }
  CliResult human = Cli({"submit-dir", dir, "--prompt", "slow zoom in", "--dry-run"});
  EXPECT_EQ(human.exit_code, 0) << human.err;
  EXPECT_THAT(human.out, HasSubstr("Dry run"));
  EXPECT_THAT(human.out, HasSubstr("shot_01_draft.png"));
  EXPECT_EQ(CountTasks(), 0);
}

TEST_F(CliTest, RerunningSubmitDirCreatesNothingNew) {
  std::string dir = MakeImageDir("queue", {"a_01.png", "b_02.png", "c_03.png"});
  std::vector<std::string> args = {"--json", "submit-dir", dir, "--max-videos", "2", "--prompt", "zoom"};
  CliResult first = Cli(args);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  CliResult second = Cli(args);
  ASSERT_EQ(second.exit_code, 0) << second.err;
  json a = Json(first), b = Json(second);
  ASSERT_EQ(a["results"].size(), 2u);
  ASSERT_EQ(b["results"].size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(a["results"][i]["task"]["id"], b["results"][i]["task"]["id"]);
  }
  EXPECT_EQ(CountTasks(), 2);
  // Other options make other tasks.
  CliResult other = Cli({"--json", "submit-dir", dir, "--max-videos", "2", "--prompt", "pan"});
  ASSERT_EQ(other.exit_code, 0) << other.err;
  EXPECT_EQ(CountTasks(), 4);
}

TEST_F(CliTest, SubmitDirWaitOutputLeavesVideosNamedByStubs) {
  std::string dir = MakeImageDir(
      "video_queue", {"alpha_01_draft.png", "beta_02.png", "gamma_draft.png", "zeta.png"});
  std::string out_dir = work_ + "/out";
  CliResult r = Cli({"submit-dir", dir, "--max-videos", "3", "--prompt",
                     "slow zoom in, cinematic lighting", "--label", "mock.progress_steps=3",
                     "--wait", "--output", out_dir});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  for (const char* stub : {"alpha_video", "beta_video", "gamma_video"}) {
    std::string video = ReadAll(absl::StrCat(out_dir, "/", stub, ".mp4"));
    ASSERT_GT(video.size(), 8u) << stub;
    EXPECT_EQ(video.substr(4, 4), "ftyp") << stub;  // an MP4
  }
  EXPECT_TRUE(ReadAll(out_dir + "/zeta_video.mp4").empty());
  struct stat st {};
  EXPECT_NE(stat((out_dir + "/alpha_video.mp4.part").c_str(), &st), 0);
  // Progress on the way (plain lines, stdout is not a terminal), then the summary.
  EXPECT_THAT(r.out, HasSubstr("Following 3 task(s)"));
  EXPECT_THAT(r.out, HasSubstr("SUCCEEDED 100%"));
  EXPECT_THAT(r.out, HasSubstr(out_dir + "/beta_video.mp4"));
}

TEST_F(CliTest, GetWaitAndDownload) {
  std::string id = SubmitOne({"--label", "mock.latency_ms=200"}, 1);
  CliResult wait = Cli({"wait", id});
  ASSERT_EQ(wait.exit_code, 0) << wait.err;
  EXPECT_THAT(wait.out, HasSubstr(id + " SUCCEEDED"));

  CliResult get = Cli({"--json", "get", id});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  json task = Json(get);
  EXPECT_EQ(task["state"], "SUCCEEDED");
  EXPECT_EQ(task["target_filename_stub"], "img1_video");

  CliResult human = Cli({"get", id});
  EXPECT_EQ(human.exit_code, 0);
  EXPECT_THAT(human.out, HasSubstr("state:"));
  EXPECT_THAT(human.out, HasSubstr("SUCCEEDED"));

  std::string file = work_ + "/clip.mp4";
  CliResult dl = Cli({"download", id, "-o", file});
  ASSERT_EQ(dl.exit_code, 0) << dl.err;
  std::string video = ReadAll(file);
  EXPECT_EQ(static_cast<int64_t>(video.size()), std::stoll(task["output_size_bytes"].get<std::string>()));
  if (!task["output_sha256"].get<std::string>().empty()) {
    EXPECT_EQ(Sha256Hex(video), task["output_sha256"]);
  }
  // Again: the file is already there.
  CliResult again = Cli({"--json", "download", id, "-o", file});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(static_cast<int64_t>(ReadAll(file).size()), static_cast<int64_t>(video.size()));
}

TEST_F(CliTest, DownloadSurvivesABrokenStream) {
  std::string id = SubmitOne({"--wait"}, 12);
  json task = Json(Cli({"--json", "get", id}));
  CuttingProxy proxy(server_port_, "ftyp");  // the MP4's first box
  ASSERT_GT(proxy.port(), 0);
  std::string file = work_ + "/resumed.mp4";
  CliResult dl = CliAt(absl::StrCat("127.0.0.1:", proxy.port()), {"--json", "download", id, "-o", file});
  ASSERT_EQ(dl.exit_code, 0) << dl.err;
  EXPECT_EQ(proxy.cuts(), 1);
  EXPECT_GE(Json(dl)["reconnects"].get<int>(), 1);
  std::string video = ReadAll(file);
  EXPECT_EQ(static_cast<int64_t>(video.size()), std::stoll(task["output_size_bytes"].get<std::string>()));
  EXPECT_EQ(Sha256Hex(video), task["output_sha256"]);
}

TEST_F(CliTest, CancelThenWaitExitsOne) {
  std::string id = SubmitOne({"--label", "mock.latency_ms=600000"}, 2);
  CliResult cancel = Cli({"cancel", id});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.err;
  EXPECT_THAT(cancel.out, HasSubstr("CANCELLED"));
  CliResult wait = Cli({"--json", "wait", id});
  EXPECT_EQ(wait.exit_code, 1);
  EXPECT_EQ(Json(wait)["tasks"][0]["state"], "CANCELLED");
  // A finished task cannot be cancelled: the server's FAILED_PRECONDITION.
  CliResult again = Cli({"cancel", id});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_THAT(again.err, HasSubstr("FAILED_PRECONDITION"));
  // No output to download.
  CliResult dl = Cli({"download", id, "-o", work_ + "/x.mp4"});
  EXPECT_EQ(dl.exit_code, 2);
  EXPECT_THAT(dl.err, HasSubstr("CANCELLED"));
}

TEST_F(CliTest, DeleteRemovesFinishedTasksAndTheirOutputOnRequest) {
  const std::string running = SubmitOne({"--label", "mock.latency_ms=600000"}, 11);
  const std::string keep = SubmitOne({"--wait"}, 12);
  const std::string drop = SubmitOne({"--wait"}, 13);
  auto output_of = [&](const std::string& id) {
    json task = Json(Cli({"--json", "get", id}));
    return task.is_discarded() ? std::string() : task.value("output_path", std::string());
  };
  const std::string kept_file = output_of(keep);
  const std::string dropped_file = output_of(drop);
  ASSERT_FALSE(kept_file.empty());
  ASSERT_FALSE(dropped_file.empty());
  ASSERT_FALSE(ReadAll(dropped_file).empty());

  // Not finished: the server's FAILED_PRECONDITION, exit 2, task untouched.
  CliResult refused = Cli({"delete", running});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_THAT(refused.err, HasSubstr("FAILED_PRECONDITION"));
  EXPECT_THAT(refused.err, HasSubstr("cancel it first"));
  EXPECT_EQ(Cli({"get", running}).exit_code, 0);

  CliResult deleted = Cli({"delete", keep});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
  EXPECT_THAT(deleted.out, HasSubstr(keep + " deleted"));
  CliResult with_output = Cli({"--json", "delete", "--delete-output", drop});
  ASSERT_EQ(with_output.exit_code, 0) << with_output.err;
  EXPECT_EQ(Json(with_output)["results"][0]["deleted"], true);
  EXPECT_FALSE(ReadAll(kept_file).empty()) << "delete without --delete-output kept the file";
  EXPECT_TRUE(ReadAll(dropped_file).empty()) << "--delete-output left the file";
  EXPECT_EQ(::access(dropped_file.c_str(), F_OK), -1);

  CliResult gone = Cli({"get", keep});
  EXPECT_NE(gone.exit_code, 0);
  EXPECT_THAT(gone.err, HasSubstr("NOT_FOUND"));
  CliResult again = Cli({"delete", drop});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_THAT(again.err, HasSubstr("NOT_FOUND"));
}

TEST_F(CliTest, ListFiltersByStateAndLabel) {
  std::string slow = SubmitOne({"--label", "mock.latency_ms=600000", "--label", "batch=b1"}, 3);
  std::string fast = SubmitOne({"--label", "batch=b2", "--wait"}, 4);
  CliResult all = Cli({"list"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_THAT(all.out, HasSubstr("PROGRESS"));
  EXPECT_THAT(all.out, HasSubstr(slow));
  EXPECT_THAT(all.out, HasSubstr(fast));

  CliResult done = Cli({"--json", "list", "--state", "succeeded"});
  ASSERT_EQ(done.exit_code, 0) << done.err;
  json tasks = Json(done)["tasks"];
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0]["id"], fast);

  CliResult labelled = Cli({"--json", "list", "--label", "batch=b1"});
  json b1 = Json(labelled)["tasks"];
  ASSERT_EQ(b1.size(), 1u);
  EXPECT_EQ(b1[0]["id"], slow);

  CliResult limited = Cli({"--json", "list", "--limit", "1"});
  EXPECT_EQ(Json(limited)["tasks"].size(), 1u);

  CliResult bad = Cli({"list", "--state", "done"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--state"));
}

TEST_F(CliTest, WatchFollowsToTheEnd) {
  std::string ok = SubmitOne({"--label", "mock.progress_steps=4"}, 5);
  std::string bad = SubmitOne({"--label", "mock.outcome=fail", "--label", "mock.failure_code=SAFETY.INPUT.IMAGE"}, 6);
  CliResult watch = Cli({"watch", ok});
  ASSERT_EQ(watch.exit_code, 0) << watch.err;
  EXPECT_THAT(watch.out, HasSubstr("SUCCEEDED"));

  CliResult both = Cli({"--json", "watch", ok, bad});
  EXPECT_EQ(both.exit_code, 1);
  std::string last_ok, last_bad;
  for (absl::string_view line : absl::StrSplit(both.out, '\n', absl::SkipEmpty())) {
    json update = json::parse(line, nullptr, false);
    ASSERT_FALSE(update.is_discarded()) << line;
    if (update["id"] == ok) last_ok = update["state"];
    if (update["id"] == bad) last_bad = update["state"];
  }
  EXPECT_EQ(last_ok, "SUCCEEDED");
  EXPECT_EQ(last_bad, "FAILED");

  CliResult get = Cli({"get", bad});
  EXPECT_THAT(get.out, HasSubstr("SAFETY.INPUT.IMAGE"));
}

TEST_F(CliTest, WatchRedrawsInPlaceOnATerminal) {
  std::string a = SubmitOne({"--label", "mock.latency_ms=1500", "--label", "mock.progress_steps=5"}, 7);
  std::string b = SubmitOne({"--label", "mock.latency_ms=1500", "--label", "mock.progress_steps=5"}, 8);
  CliResult r = CliOnTerminal({"watch", a, b});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("\x1b[2A"));  // back up over the two task lines
  EXPECT_THAT(r.out, HasSubstr("\x1b[2K"));  // and clear each before drawing it again
  EXPECT_THAT(r.out, HasSubstr("img7_video"));
  EXPECT_THAT(r.out, HasSubstr("[########################] 100%  SUCCEEDED"));
  EXPECT_THAT(r.out, HasSubstr("RUNNING"));
}

TEST_F(CliTest, FailedTaskWithWaitExitsOne) {
  CliResult r = Cli({"submit", WriteImage("f.png", 9), "--prompt", "zoom", "--label",
                     "mock.outcome=fail", "--wait"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.out, HasSubstr("FAILED"));
}

TEST_F(CliTest, ValidationErrorsExitTwoWithTheServersMessage) {
  CliResult ratio = Cli({"submit", WriteImage("v.png", 10), "--prompt", "zoom", "--ratio", "7:3"});
  EXPECT_EQ(ratio.exit_code, 2);
  EXPECT_THAT(ratio.err, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(ratio.err, HasSubstr("ratio"));

  std::string not_image = work_ + "/notes.png";
  ASSERT_TRUE(WriteFileAtomically(not_image, "plain text, not a picture").ok());
  CliResult sniff = Cli({"submit", not_image, "--prompt", "zoom"});
  EXPECT_EQ(sniff.exit_code, 2);
  EXPECT_THAT(sniff.err, HasSubstr("INVALID_ARGUMENT"));

  CliResult unknown = Cli({"get", "01ARZ3NDEKTSV4RRFFQ69G5FAV"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("NOT_FOUND"));

  CliResult label = Cli({"submit", WriteImage("w.png", 11), "--prompt", "zoom", "--label", "novalue"});
  EXPECT_EQ(label.exit_code, 2);
  EXPECT_THAT(label.err, HasSubstr("--label"));

  CliResult option =
      Cli({"submit", WriteImage("o.png", 12), "--prompt", "zoom", "--model-option", "cfg_scale=1"});
  EXPECT_EQ(option.exit_code, 2);
  EXPECT_THAT(option.err, HasSubstr("spec.model_options has key \"cfg_scale\""));
  CliResult bad_option =
      Cli({"submit", WriteImage("p.png", 13), "--prompt", "zoom", "-O", "novalue"});
  EXPECT_EQ(bad_option.exit_code, 2);
  EXPECT_THAT(bad_option.err, HasSubstr("--model-option"));

  CliResult usage = Cli({"submit", "--prompt", "zoom"});
  EXPECT_EQ(usage.exit_code, 2);
  CliResult missing = Cli({"submit", work_ + "/nope.png", "--prompt", "zoom"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(CountTasks(), 0);
}

TEST_F(CliTest, BackendsDescribeTheMock) {
  CliResult r = Cli({"--json", "backends"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json out = Json(r);
  bool has_mock = false;
  for (const auto& backend : out["backends"]) has_mock |= backend["name"] == "mock";
  EXPECT_TRUE(has_mock) << r.out;
  CliResult human = Cli({"backends"});
  EXPECT_EQ(human.exit_code, 0);
  EXPECT_THAT(human.out, HasSubstr("mock"));
  EXPECT_THAT(human.out, HasSubstr("ratios:"));
}

TEST_F(CliTest, ServerFromTheEnvironment) {
  std::string out = tmp_.path() + "/env.out", err = tmp_.path() + "/env.err";
  pid_t pid = Spawn({VT_CLI_PATH, "--json", "backends"}, out, err, server_);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << ReadAll(err);
  EXPECT_THAT(ReadAll(out), HasSubstr("\"mock\""));
  // --server wins over the environment.
  int fd = -1;
  int dead_port = BindWithoutListening(fd);
  pid = Spawn({VT_CLI_PATH, "--server", absl::StrCat("127.0.0.1:", dead_port), "backends"}, out, err,
              server_);
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EQ(WEXITSTATUS(status), 3);
  close(fd);
}

TEST_F(CliTest, HelpOnEveryCommand) {
  for (const char* command : {"submit", "submit-dir", "list", "get", "cancel", "watch", "wait",
                              "download", "backends"}) {
    CliResult r = Cli({command, "--help"});
    EXPECT_EQ(r.exit_code, 0) << command;
    EXPECT_THAT(r.out, HasSubstr("Examples:")) << command;
  }
}

TEST(CliUnreachableTest, ExitsThreeAndNamesTheServer) {
  TempDir tmp;
  int fd = -1;
  int port = BindWithoutListening(fd);
  ASSERT_GT(port, 0);
  std::string server = absl::StrCat("127.0.0.1:", port);
  for (std::vector<std::string> args :
       {std::vector<std::string>{"list"}, std::vector<std::string>{"--json", "get", "x"},
        std::vector<std::string>{"backends"}}) {
    std::vector<std::string> argv = {VT_CLI_PATH, "--server", server, "--rpc-timeout", "5"};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_t pid = Spawn(argv, tmp.path() + "/out", tmp.path() + "/err");
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 3) << args[0];
    EXPECT_THAT(ReadAll(tmp.path() + "/err"), HasSubstr(server));
  }
  close(fd);
}

}  // namespace
}  // namespace videotask
