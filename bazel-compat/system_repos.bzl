"""Repository rules that expose Debian's system packages and the project's own
source tree to Bazel. Nothing is downloaded."""

def _pkg_config_library_impl(rctx):
    linkopts = []
    defines = []
    includes = []
    if rctx.attr.modules:
        pc = rctx.which("pkg-config")
        if pc == None:
            fail("pkg-config not found (apt-get install pkg-config)")
        libs = rctx.execute([pc, "--libs"] + rctx.attr.modules)
        if libs.return_code != 0:
            fail("pkg-config --libs %s failed: %s" % (" ".join(rctx.attr.modules), libs.stderr))
        cflags = rctx.execute([pc, "--cflags"] + rctx.attr.modules)
        if cflags.return_code != 0:
            fail("pkg-config --cflags %s failed: %s" % (" ".join(rctx.attr.modules), cflags.stderr))
        linkopts = [f for f in libs.stdout.strip().split(" ") if f]
        defines = [f[2:] for f in cflags.stdout.strip().split(" ") if f.startswith("-D")]

        # Include folders other than the compiler's own (e.g. libpq's
        # /usr/include/postgresql) are linked into the repository.
        for f in cflags.stdout.strip().split(" "):
            if f.startswith("-I") and f[2:] not in ["/usr/include", "/usr/include/x86_64-linux-gnu"]:
                link = "include/%d" % len(includes)
                rctx.symlink(f[2:], link)
                includes.append(link)
    rctx.file("WORKSPACE", "")
    rctx.file("BUILD.bazel", """cc_library(
    name = "lib",
    hdrs = glob(["include/**"]),
    includes = {includes},
    linkopts = {linkopts},
    defines = {defines},
    visibility = ["//visibility:public"],
)
""".format(
        includes = repr(includes),
        linkopts = repr(rctx.attr.extra_linkopts + linkopts),
        defines = repr(defines),
    ))

pkg_config_library = repository_rule(
    doc = "A cc_library @<name>//:lib with the link flags and defines pkg-config reports.",
    implementation = _pkg_config_library_impl,
    attrs = {
        "modules": attr.string_list(),
        "extra_linkopts": attr.string_list(),
    },
    local = True,
)

def _system_protobuf_impl(rctx):
    """A local @com_google_protobuf, so that the native proto_library and
    cc_proto_library use Debian's protoc and libprotobuf."""
    for tool in ["protoc", "grpc_cpp_plugin"]:
        path = rctx.which(tool)
        if path == None:
            fail("%s not found (apt-get install protobuf-compiler protobuf-compiler-grpc)" % tool)
        rctx.symlink(path, tool)
    rctx.symlink(rctx.attr.include_dir + "/google/protobuf", "google/protobuf")
    rctx.file("WORKSPACE", "")
    rctx.file("BUILD.bazel", """
package(default_visibility = ["//visibility:public"])

exports_files(["protoc", "grpc_cpp_plugin"])

# Well-known types shipped by libprotobuf-dev; their C++ code lives in libprotobuf.
WKT = ["any", "api", "duration", "empty", "field_mask", "source_context",
       "struct", "timestamp", "type", "wrappers", "descriptor"]

[proto_library(
    name = n + "_proto",
    srcs = ["google/protobuf/%s.proto" % n],
    deps = {"api": [":source_context_proto", ":type_proto"],
            "type": [":any_proto", ":source_context_proto"]}.get(n, []),
) for n in WKT]

proto_lang_toolchain(
    name = "cc_toolchain",
    command_line = "--cpp_out=$(OUT)",
    runtime = "@{RUNTIME}//:lib",
    blacklisted_protos = [":%s_proto" % n for n in WKT],
)
""".replace("{RUNTIME}", rctx.attr.runtime_repo))

system_protobuf = repository_rule(
    implementation = _system_protobuf_impl,
    attrs = {
        "include_dir": attr.string(default = "/usr/include"),
        "runtime_repo": attr.string(default = "system_protobuf"),
    },
    local = True,
)

def _project_version(cmake_text):
    """The VERSION of the top-level project() call in CMakeLists.txt."""
    start = cmake_text.find("project(")
    if start < 0:
        fail("no project() call in the top-level CMakeLists.txt")
    call = cmake_text[start:cmake_text.find(")", start)]
    words = call.replace("\n", " ").split(" ")
    for i, w in enumerate(words):
        if w == "VERSION" and i + 1 < len(words):
            return words[i + 1]
    fail("project() in the top-level CMakeLists.txt has no VERSION")

def _source_tree_impl(rctx):
    """Like new_local_repository, but links only the listed folders of the
    source tree (so the repository never wanders into bazel-compat/ and its
    bazel-* output symlinks), installs the given BUILD files, and records the
    CMake project version in version.bzl."""
    anchor = rctx.path(rctx.attr.anchor).dirname
    path = rctx.attr.path
    root = rctx.path(path if path.startswith("/") else "%s/%s" % (anchor, path))
    for link, target in rctx.attr.links.items():
        rctx.symlink(rctx.path("%s/%s" % (root, target)), link)
    for label, dest in rctx.attr.files.items():
        rctx.symlink(label, dest)
    rctx.file("WORKSPACE", "")
    cmake = rctx.read(rctx.path("%s/CMakeLists.txt" % root))
    rctx.file("version.bzl", "PROJECT_VERSION = %s\n" % repr(_project_version(cmake)))

source_tree = repository_rule(
    implementation = _source_tree_impl,
    attrs = {
        "path": attr.string(
            default = "..",
            doc = "The source tree: absolute, or relative to the folder of `anchor`.",
        ),
        "anchor": attr.label(default = Label("//:WORKSPACE"), allow_single_file = True),
        "links": attr.string_dict(
            mandatory = True,
            doc = "Link name in the repository -> folder of the source tree.",
        ),
        "files": attr.label_keyed_string_dict(
            allow_files = True,
            doc = "Files (BUILD files, .bzl) -> their path in the repository.",
        ),
    },
    local = True,
)
