// TLS verification of CurlTransport against a loopback HTTPS server whose
// self-signed certificate is made in memory for the test.
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include "absl/strings/str_cat.h"
#include "backends/api/errors.h"
#include "backends/http/curl_transport.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace videotask::backends {
namespace {

using ::testing::HasSubstr;
using ::videotask::testing::StatusIs;

struct KeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct CertDeleter {
  void operator()(X509* cert) const { X509_free(cert); }
};

// A self-signed certificate for `subject_ip` (CN and subjectAltName).
void MakeCertificate(const char* subject_ip, std::unique_ptr<EVP_PKEY, KeyDeleter>* key,
                     std::unique_ptr<X509, CertDeleter>* cert) {
  key->reset(EVP_EC_gen("P-256"));
  ASSERT_NE(*key, nullptr);
  cert->reset(X509_new());
  X509* x = cert->get();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key->get());
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(subject_ip), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  std::string san = absl::StrCat("IP:", subject_ip);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str());
  ASSERT_NE(ext, nullptr);
  X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
  ASSERT_GT(X509_sign(x, key->get(), EVP_sha256()), 0);
}

void WritePem(X509* cert, const std::string& path) {
  BIO* bio = BIO_new_file(path.c_str(), "w");
  ASSERT_NE(bio, nullptr);
  PEM_write_bio_X509(bio, cert);
  BIO_free(bio);
}

class CurlTlsTest : public ::testing::Test {
 protected:
  void Serve(const char* cert_ip) {
    MakeCertificate(cert_ip, &key_, &cert_);
    if (HasFatalFailure()) return;
    WritePem(cert_.get(), ca_path_);
    server_ = std::make_unique<httplib::SSLServer>(cert_.get(), key_.get());
    ASSERT_TRUE(server_->is_valid());
    server_->Get("/hi", [this](const httplib::Request&, httplib::Response& res) {
      ++requests_;
      res.set_content("secure hello", "text/plain");
    });
    port_ = server_->bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    while (!server_->is_running()) std::this_thread::yield();
  }

  void TearDown() override {
    if (thread_.joinable()) {
      server_->stop();
      thread_.join();
    }
  }

  HttpRequest Get() const {
    HttpRequest request;
    request.url = absl::StrCat("https://127.0.0.1:", port_, "/hi");
    return request;
  }

  videotask::testing::TempDir dir_;
  const std::string ca_path_ = dir_.path() + "/ca.pem";
  std::unique_ptr<EVP_PKEY, KeyDeleter> key_;
  std::unique_ptr<X509, CertDeleter> cert_;
  std::unique_ptr<httplib::SSLServer> server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<int> requests_{0};
};

TEST_F(CurlTlsTest, UntrustedCertificateIsRefusedBeforeTheRequestIsSent) {
  Serve("127.0.0.1");
  VT_ASSERT_OK_AND_ASSIGN(auto transport, CurlTransport::Create());
  absl::StatusOr<HttpResponse> response = transport->Send(Get());
  EXPECT_THAT(response, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("TLS")));
  EXPECT_FALSE(MaybeSent(response.status()));
  EXPECT_EQ(requests_.load(), 0);
}

TEST_F(CurlTlsTest, TrustedCertificateForTheHostIsAccepted) {
  Serve("127.0.0.1");
  CurlOptions options;
  options.ca_bundle_path = ca_path_;
  VT_ASSERT_OK_AND_ASSIGN(auto transport, CurlTransport::Create(options));
  VT_ASSERT_OK_AND_ASSIGN(HttpResponse response, transport->Send(Get()));
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "secure hello");
}

TEST_F(CurlTlsTest, TrustedCertificateForAnotherHostIsRefused) {
  Serve("127.0.0.2");  // host name check: the certificate names another address
  CurlOptions options;
  options.ca_bundle_path = ca_path_;
  VT_ASSERT_OK_AND_ASSIGN(auto transport, CurlTransport::Create(options));
  absl::StatusOr<HttpResponse> response = transport->Send(Get());
  EXPECT_THAT(response, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("TLS")));
  EXPECT_EQ(requests_.load(), 0);
}

}  // namespace
}  // namespace videotask::backends
