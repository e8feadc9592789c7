"""Macros that mirror the CMake helpers vt_library() and vt_test(), and a
cc_grpc_library() for the gRPC stubs made by Debian's grpc_cpp_plugin."""

# The same flags as VT_WARNINGS in the top-level CMakeLists.txt (generated
# proto code is exempt there too).
VT_WARNINGS = [
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-unused-parameter",
    "-Werror=unused-result",
    "-Werror=switch",
]

def vt_library(name, srcs, hdrs = [], deps = [], **kwargs):
    """vt_library(NAME SOURCES .. DEPS ..): one static library per room."""
    native.cc_library(
        name = name,
        srcs = srcs,
        hdrs = hdrs,
        copts = VT_WARNINGS,
        deps = deps,
        linkstatic = True,
        **kwargs
    )

def vt_binary(name, srcs, deps = [], **kwargs):
    native.cc_binary(name = name, srcs = srcs, copts = VT_WARNINGS, deps = deps, **kwargs)

def vt_test(name, srcs, deps = [], label = "unit", size = None, **kwargs):
    """vt_test(NAME SOURCES .. DEPS .. LABEL unit|integration): a GoogleTest
    binary linked with vt_testing, gmock and gtest_main; the CMake label
    becomes a tag (bazel test //... --test_tag_filters=unit)."""
    # Headers next to the test's sources (test-only helpers) are part of it.
    dirs = {src.rpartition("/")[0]: True for src in srcs if "/" in src}
    local_hdrs = native.glob([d + "/*.h" for d in dirs])
    native.cc_test(
        name = name,
        srcs = srcs + [h for h in local_hdrs if h not in srcs],
        copts = VT_WARNINGS,
        deps = deps + [
            "@videotask_src//:vt_testing",
            "@system_gmock//:lib",
            "@system_gtest_main//:lib",
        ],
        size = size or ("small" if label == "unit" else "medium"),
        # Static libraries, as with CMake (Bazel would link a test's
        # libraries as shared objects by default).
        linkstatic = True,
        tags = [label] + kwargs.pop("tags", []),
        **kwargs
    )

def cc_grpc_library(name, proto, deps, import_root = "", **kwargs):
    """The gRPC C++ stubs of one .proto file: <stem>.grpc.pb.{h,cc} next to
    the .pb.h of the cc_proto_library in `deps`.

    proto: the .proto file in this package; its path is also its import path
        (relative to `import_root`, a folder of this package).
    deps: the cc_proto_library of the same .proto file.
    """
    rel = proto[len(import_root) + 1:] if import_root else proto
    stem = proto[:-len(".proto")]
    outs = [stem + ".grpc.pb.h", stem + ".grpc.pb.cc"]
    native.genrule(
        name = name + "_codegen",
        srcs = [proto],
        outs = outs,
        tools = [
            "@com_google_protobuf//:protoc",
            "@com_google_protobuf//:grpc_cpp_plugin",
        ],
        # The import root is where $(location) ends with the import path.
        cmd = ("src=$(location {proto}); root=$${{src%/{rel}}}; " +
               "$(location @com_google_protobuf//:protoc) --proto_path=$$root " +
               "--plugin=protoc-gen-grpc=$(location @com_google_protobuf//:grpc_cpp_plugin) " +
               "--grpc_out=$(RULEDIR)/{import_root} $$src").format(
            proto = proto,
            rel = rel,
            import_root = import_root,
        ),
    )
    native.cc_library(
        name = name,
        srcs = [outs[1]],
        hdrs = [outs[0]],
        deps = deps + ["@system_grpc//:lib"],
        **kwargs
    )
