"""videotask_dependencies(): every external repository the Bazel build needs.

The WORKSPACE of bazel-compat/ calls it. Another Bazel 4-6 WORKSPACE can reuse
the build the same way:

    local_repository(name = "videotask", path = "/path/to/videotask/bazel-compat")
    load("@videotask//:deps.bzl", "videotask_dependencies")
    videotask_dependencies()

and then depend on @videotask//:videotask_cc_grpc, @videotask//:videotaskd, ...
"""

load(":system_repos.bzl", "pkg_config_library", "source_tree", "system_protobuf")

# Every absl component the sources use (Debian's libabsl-dev, 20220623).
ABSL_MODULES = [
    "absl_base",
    "absl_cord",
    "absl_flat_hash_map",
    "absl_flat_hash_set",
    "absl_hash",
    "absl_memory",
    "absl_random_bit_gen_ref",
    "absl_random_distributions",
    "absl_random_random",
    "absl_status",
    "absl_statusor",
    "absl_str_format",
    "absl_strings",
    "absl_synchronization",
    "absl_time",
]

def videotask_dependencies():
    # The project's own sources: the folders of the checkout that holds
    # bazel-compat/. `videotask/` is proto/videotask/ (the contract's import
    # root) and `grpc/` the test-side copies of the gRPC health and reflection
    # protocols, so generated headers keep the include paths CMake gives them.
    source_tree(
        name = "videotask_src",
        path = "..",
        anchor = Label("//:WORKSPACE"),
        links = {
            "backends": "backends",
            "bench": "bench",
            "client": "client",
            "common": "common",
            "server": "server",
            "tests": "tests",
            "videotask": "proto/videotask",
            "grpc": "tests/integration/protos/grpc",
        },
        files = {
            Label("//:src.BUILD"): "BUILD.bazel",
            Label("//:src_bin.BUILD"): "bin/BUILD.bazel",
            Label("//:defs.bzl"): "defs.bzl",
        },
    )

    # protoc, grpc_cpp_plugin and the well-known .proto files from Debian.
    system_protobuf(name = "com_google_protobuf")

    pkg_config_library(name = "system_protobuf", modules = ["protobuf"])
    pkg_config_library(name = "system_grpc", modules = ["grpc++", "protobuf"])
    pkg_config_library(
        name = "system_grpc_reflection",
        modules = ["grpc++", "protobuf"],
        extra_linkopts = ["-lgrpc++_reflection"],
    )
    pkg_config_library(name = "system_absl", modules = ABSL_MODULES)
    pkg_config_library(
        name = "system_absl_flags",
        modules = ["absl_flags", "absl_flags_parse", "absl_flags_usage"],
    )
    pkg_config_library(name = "system_curl", modules = ["libcurl"])
    pkg_config_library(name = "system_sqlite", modules = ["sqlite3"])
    pkg_config_library(name = "system_libpq", modules = ["libpq"])
    pkg_config_library(name = "system_crypto", modules = ["libcrypto"])
    pkg_config_library(name = "system_ssl", modules = ["libssl", "libcrypto"])
    pkg_config_library(name = "system_zlib", modules = ["zlib"])
    pkg_config_library(name = "system_spdlog", modules = ["spdlog", "fmt"])
    pkg_config_library(name = "system_threads", extra_linkopts = ["-pthread"])
    pkg_config_library(name = "system_nlohmann_json", modules = ["nlohmann_json"])
    pkg_config_library(name = "system_httplib", modules = ["cpp-httplib"])
    pkg_config_library(name = "system_prometheus", modules = ["prometheus-cpp-core"])
    pkg_config_library(name = "system_cli11", modules = ["CLI11"])
    pkg_config_library(name = "system_gmock", modules = ["gmock", "gtest"])
    pkg_config_library(name = "system_gtest_main", modules = ["gtest_main"])
