#include "tests/hardening/test_pki.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/files.h"

namespace videotask::testing {
namespace {

absl::Status SelfSigned(const std::string& cert, const std::string& key, const std::string& cn) {
  std::string command = absl::StrCat(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 ",
      "-subj /CN=", cn, " -addext subjectAltName=IP:127.0.0.1,DNS:localhost ",
      "-keyout '", key, "' -out '", cert, "' >/dev/null 2>&1");
  int rc = std::system(command.c_str());
  if (rc != 0) return absl::InternalError(absl::StrCat("openssl req failed (", rc, ")"));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TestPki> MakeTestPki(const std::string& dir) {
  TestPki pki;
  pki.server_cert_file = dir + "/server.crt";
  pki.server_key_file = dir + "/server.key";
  pki.client_cert_file = dir + "/client.crt";
  pki.client_key_file = dir + "/client.key";
  pki.other_cert_file = dir + "/other.crt";
  pki.other_key_file = dir + "/other.key";
  if (absl::Status s = SelfSigned(pki.server_cert_file, pki.server_key_file, "videotask-test-server");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = SelfSigned(pki.client_cert_file, pki.client_key_file, "videotask-test-client");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = SelfSigned(pki.other_cert_file, pki.other_key_file, "videotask-test-other");
      !s.ok()) {
    return s;
  }
  constexpr int64_t kMax = 1 << 20;
  for (auto [file, out] : {std::pair{&pki.server_cert_file, &pki.server_cert},
                           std::pair{&pki.client_cert_file, &pki.client_cert},
                           std::pair{&pki.client_key_file, &pki.client_key},
                           std::pair{&pki.other_cert_file, &pki.other_cert},
                           std::pair{&pki.other_key_file, &pki.other_key}}) {
    absl::StatusOr<std::string> text = ReadFile(*file, kMax);
    if (!text.ok()) return text.status();
    *out = *std::move(text);
  }
  return pki;
}

}  // namespace videotask::testing
