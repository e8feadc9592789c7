#include "tests/testing/webhook_receiver.h"

#include <netdb.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <utility>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/net.h"

namespace videotask::testing {
namespace {

constexpr char kSecretBytes[] = "webhook test secret 24b!";

// "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>", computed here on purpose
// with OpenSSL's one-shot HMAC.
std::string ExpectedSignature(const std::string& key, const std::string& id,
                              const std::string& timestamp, const std::string& body) {
  const std::string content = id + "." + timestamp + "." + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(content.data()), content.size(), mac, &length);
  return "v1," + absl::Base64Escape(std::string(reinterpret_cast<char*>(mac), length));
}

std::string DecodeSecret(const std::string& secret) {
  std::string key;
  absl::Base64Unescape(absl::StripPrefix(secret, "whsec_"), &key);
  return key;
}

}  // namespace

std::string LoopbackName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "";
  addrinfo* found = nullptr;
  if (getaddrinfo(name, nullptr, nullptr, &found) != 0) return "";
  bool all_loopback = found != nullptr;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    all_loopback = all_loopback && !IsPublicAddress(a->ai_addr);
  }
  freeaddrinfo(found);
  return all_loopback ? std::string(name) : "";
}

std::string TestWebhookSecret() { return "whsec_" + absl::Base64Escape(kSecretBytes); }

WebhookReceiver::WebhookReceiver(std::string secret)
    : key_(DecodeSecret(secret)), server_(std::make_unique<httplib::Server>()) {
  script_ = [](const std::string&, int) { return 200; };
  server_->set_keep_alive_timeout(1);
  server_->set_tcp_nodelay(true);
  server_->Post(R"(/.*)", [this](const httplib::Request& req, httplib::Response& res) {
    ReceivedWebhook got;
    got.path = req.path;
    got.id = req.get_header_value("webhook-id");
    got.timestamp = req.get_header_value("webhook-timestamp");
    got.signature = req.get_header_value("webhook-signature");
    got.body = req.body;
    got.signature_ok = !got.id.empty() &&
                       got.signature == ExpectedSignature(key_, got.id, got.timestamp, got.body);
    nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
    if (body.is_object()) {
      got.type = body.value("type", "");
      if (body.contains("data") && body["data"].is_object()) {
        got.task_id = body["data"].value("id", "");
        got.state = body["data"].value("state", "");
      }
    }
    absl::MutexLock lock(&mu_);
    got.answered = script_(got.id, ++tries_[got.id]);
    res.status = got.answered;
    res.set_content("ok", "text/plain");
    received_.push_back(std::move(got));
  });
}

WebhookReceiver::~WebhookReceiver() { Stop(); }

absl::Status WebhookReceiver::Start() {
  port_ = server_->bind_to_any_port("127.0.0.1");
  if (port_ <= 0) return absl::UnavailableError("the webhook receiver could not bind 127.0.0.1");
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  while (!server_->is_running()) std::this_thread::yield();
  return absl::OkStatus();
}

void WebhookReceiver::Stop() {
  if (thread_.joinable()) {
    server_->stop();
    thread_.join();
  }
}

void WebhookReceiver::SetScript(Script script) {
  absl::MutexLock lock(&mu_);
  script_ = std::move(script);
}

std::string WebhookReceiver::url(const std::string& path) const {
  return absl::StrCat("http://127.0.0.1:", port_, path);
}

std::vector<ReceivedWebhook> WebhookReceiver::received() const {
  absl::MutexLock lock(&mu_);
  return received_;
}

bool WebhookReceiver::WaitFor(
    const std::function<bool(const std::vector<ReceivedWebhook>&)>& done,
    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (done(received_)) return true;
    }
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));  // a real server delivers in real time
  }
}

}  // namespace videotask::testing
