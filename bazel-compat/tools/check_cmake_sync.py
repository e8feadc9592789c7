#!/usr/bin/env python3
"""Checks that the Bazel build mirrors the CMake build one to one.

For every CMake target that compiles .cc files of the source tree
(vt_library, vt_test, add_library, add_executable), @videotask_src must have
a cc_library / cc_binary / cc_test of the same name with the same .cc files,
tests must carry their CMake label as a tag, and every such Bazel target must
be reachable from //... (so `bazel build //...` builds it).

Usage (from bazel-compat/): tools/check_cmake_sync.py
Exit code 0 when in sync; otherwise prints what to add or change.
"""

import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
COMPAT = os.path.dirname(HERE)
ROOT = os.path.dirname(COMPAT)

# Folders of the checkout that are not part of the CMake source tree
# (examples/ holds projects of their own, built against the installed package).
SKIP_DIRS = {".git", "bazel-compat", "var", "examples"}

# Folders of @videotask_src that link somewhere else in the checkout (deps.bzl).
LINKS = {
    "videotask/": "proto/videotask/",
    "grpc/": "tests/integration/protos/grpc/",
}

CMAKE_KEYWORDS = {"STATIC", "SHARED", "OBJECT", "MODULE", "INTERFACE", "EXCLUDE_FROM_ALL",
                  "WIN32", "MACOSX_BUNDLE", "PRIVATE", "PUBLIC"}


def cmake_files():
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel = os.path.relpath(dirpath, ROOT)
        top = rel.split(os.sep)[0]
        if top in SKIP_DIRS or top.startswith("build") or top.startswith("bazel-"):
            dirnames[:] = []
            continue
        dirnames.sort()
        if "CMakeLists.txt" in filenames:
            yield os.path.join(dirpath, "CMakeLists.txt")


def cmake_calls(text):
    """(command, [args]) for every top-level command call of a CMake file."""
    text = re.sub(r"#[^\n]*", "", text)
    for m in re.finditer(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(", text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        args = [a.strip('"') for a in text[m.end():i - 1].split()]
        yield m.group(1), args


def cmake_targets():
    """{name: (set of .cc paths relative to the checkout, label or None)}."""
    targets = {}
    for path in cmake_files():
        cur = os.path.dirname(path)
        with open(path) as f:
            text = f.read()
        for cmd, args in cmake_calls(text):
            if cmd in ("function", "macro") or not args or "${" in args[0]:
                continue
            name, rest = args[0], args[1:]
            label = None
            if cmd in ("vt_library", "vt_test"):
                srcs, mode = [], None
                for a in rest:
                    if a in ("SOURCES", "DEPS", "LABEL"):
                        mode = a
                    elif mode == "SOURCES":
                        srcs.append(a)
                    elif mode == "LABEL":
                        label = a
                if cmd == "vt_test":
                    label = label or "unit"
            elif cmd in ("add_library", "add_executable"):
                srcs = [a for a in rest if a not in CMAKE_KEYWORDS]
            elif cmd == "target_sources" and name in targets:
                srcs = [a for a in rest if a not in CMAKE_KEYWORDS]
                targets[name][0].update(resolve(srcs, cur))
                continue
            else:
                continue
            targets[name] = (resolve(srcs, cur), label)
    return {n: t for n, t in targets.items() if t[0]}


def resolve(srcs, cur):
    out = set()
    for s in srcs:
        s = s.replace("${PROJECT_SOURCE_DIR}", ROOT).replace("${CMAKE_SOURCE_DIR}", ROOT)
        s = s.replace("${CMAKE_CURRENT_SOURCE_DIR}", cur)
        if "${" in s or "$<" in s or not s.endswith(".cc"):
            continue  # generated code (proto stubs) or not a C++ source
        out.add(os.path.relpath(os.path.normpath(os.path.join(cur, s)), ROOT))
    return out


def bazel(*args):
    r = subprocess.run(["bazel"] + list(args), cwd=COMPAT, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        sys.exit("bazel %s failed" % " ".join(args))
    return r.stdout


def bazel_targets():
    """{name: (kind, set of .cc paths relative to the checkout, tags)}."""
    out = bazel("query", "--noshow_progress", "--output=build",
                'kind("cc_(library|binary|test) rule", @videotask_src//...)')
    targets = {}
    for block in re.split(r"\n(?=\w+\()", out):
        m = re.match(r"(\w+)\(", block.strip() or "x")
        name = re.search(r'^\s*name = "([^"]+)"', block, re.M)
        if not m or not name:
            continue

        def strings(attr):
            a = re.search(r"^\s*%s = \[([^\]]*)\]" % attr, block, re.M)
            return re.findall(r'"([^"]+)"', a.group(1)) if a else []

        srcs = set()
        for label in strings("srcs"):
            path = label.split(":", 1)[1] if ":" in label else label
            if not path.endswith(".cc") or path.endswith(".pb.cc"):
                continue
            for link, target in LINKS.items():
                if path.startswith(link):
                    path = target + path[len(link):]
            srcs.add(path)
        targets[name.group(1)] = (m.group(1), srcs, set(strings("tags")))
    return targets


def main():
    cm = cmake_targets()
    bz = bazel_targets()
    reachable = set(
        line.rsplit(":", 1)[1] for line in bazel(
            "query", "--noshow_progress", "--noimplicit_deps",
            'kind("cc_(library|binary|test) rule", deps(//...))').split())
    problems = []
    for name in sorted(cm):
        srcs, label = cm[name]
        if name not in bz:
            problems.append("CMake target %s (%s) has no Bazel target: add it to "
                            "bazel-compat/src.BUILD (binaries: src_bin.BUILD) and targets.bzl"
                            % (name, " ".join(sorted(srcs))))
            continue
        kind, bsrcs, tags = bz[name]
        if srcs != bsrcs:
            problems.append("%s: sources differ; only in CMake: %s; only in Bazel: %s" % (
                name, sorted(srcs - bsrcs) or "-", sorted(bsrcs - srcs) or "-"))
        if label is not None and (kind != "cc_test" or label not in tags):
            problems.append("%s: CMake test with label %s, Bazel has %s tags %s"
                            % (name, label, kind, sorted(tags)))
        if name not in reachable:
            problems.append("%s: not reachable from //... (add it to bazel-compat/targets.bzl)"
                            % name)
    for name in sorted(set(bz) - set(cm)):
        if bz[name][1]:
            problems.append("Bazel target %s compiles %s but CMake has no target %s"
                            % (name, sorted(bz[name][1]), name))
    if problems:
        print("Bazel build out of sync with CMake:")
        for p in problems:
            print("  - " + p)
        return 1
    print("Bazel targets mirror CMake: %d targets, %d .cc files"
          % (len(cm), sum(len(s) for s, _ in cm.values())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
