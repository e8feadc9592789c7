// Throwaway certificates for TLS tests, made at test time with the openssl
// command: a self-signed server certificate for 127.0.0.1/localhost and a
// self-signed client certificate (its own CA), each with its key.
#ifndef VIDEOTASK_TESTS_HARDENING_TEST_PKI_H_
#define VIDEOTASK_TESTS_HARDENING_TEST_PKI_H_

#include <string>

#include "absl/status/statusor.h"

namespace videotask::testing {

struct TestPki {
  std::string server_cert_file, server_key_file;
  std::string client_cert_file, client_key_file;
  std::string other_cert_file, other_key_file;  // a second, unrelated identity
  // File contents (PEM).
  std::string server_cert, client_cert, client_key, other_cert, other_key;
};

// Writes the files into `dir` (which must exist).
absl::StatusOr<TestPki> MakeTestPki(const std::string& dir);

}  // namespace videotask::testing

#endif  // VIDEOTASK_TESTS_HARDENING_TEST_PKI_H_
