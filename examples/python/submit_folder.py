#!/usr/bin/env python3
"""Turn a folder of images into videos with a videotask server.

The original batch workflow in Python: every PNG/JPEG/WebP directly in FOLDER
(in name order, the first --max-videos of them), each with its prompt (a
sidecar NAME.txt beside the image, else --prompt), submitted in one
BatchSubmitTasks; then it waits for every task and downloads each video as
OUTPUT/<stub>.mp4.

Needs Debian's python3-grpcio and python3-protobuf, and protoc with
grpc_python_plugin (protobuf-compiler, protobuf-compiler-grpc): the stubs are
generated from the installed videotask.proto at start-up into a temporary
folder.

  python3 submit_folder.py video_queue --max-videos 3 --prompt "slow zoom in" --output out/

Exit status: 0 when every video was made, 1 when a task failed, 2 for bad
usage or a refused request, 3 when the server cannot be reached.
"""

import argparse
import hashlib
import importlib
import os
import shutil
import subprocess
import sys
import tempfile

IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")


def default_proto_dir():
    """The installed contract (<prefix>/share/videotask/proto), else the checkout's."""
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [
        os.environ.get("VIDEOTASK_PROTO_DIR", ""),
        "/usr/share/videotask/proto",
        "/usr/local/share/videotask/proto",
        os.path.join(here, "..", "..", "proto"),
    ]
    for folder in candidates:
        if folder and os.path.isfile(os.path.join(folder, "videotask/v1/video_task_service.proto")):
            return folder
    return ""


def load_stubs(proto_dir):
    """Generates the Python stubs of videotask.v1 and imports them."""
    protoc = shutil.which("protoc")
    plugin = shutil.which("grpc_python_plugin")
    if not protoc or not plugin:
        sys.exit("submit_folder: needs protoc and grpc_python_plugin "
                 "(apt-get install protobuf-compiler protobuf-compiler-grpc)")
    out = tempfile.mkdtemp(prefix="videotask-stubs-")
    subprocess.run([protoc, "-I", proto_dir, "-I", "/usr/include", "--python_out", out,
                    "--grpc_out", out, "--plugin=protoc-gen-grpc=" + plugin,
                    "videotask/v1/video_task_service.proto"], check=True)
    sys.path.insert(0, out)
    pb2 = importlib.import_module("videotask.v1.video_task_service_pb2")
    pb2_grpc = importlib.import_module("videotask.v1.video_task_service_pb2_grpc")
    return pb2, pb2_grpc


def find_images(folder, max_videos):
    names = sorted(n for n in os.listdir(folder)
                   if os.path.splitext(n)[1].lower() in IMAGE_TYPES
                   and os.path.isfile(os.path.join(folder, n)))
    return names[:max_videos] if max_videos > 0 else names


def prompt_for(folder, name, default):
    sidecar = os.path.join(folder, os.path.splitext(name)[0] + ".txt")
    if os.path.isfile(sidecar):
        with open(sidecar, encoding="utf-8") as f:
            text = f.read().strip()
        if text:
            return text
    return default


def build_requests(pb2, args, names):
    requests = []
    for name in names:
        prompt = prompt_for(args.folder, name, args.prompt)
        if not prompt:
            sys.exit(f"submit_folder: {name} has no prompt (no {os.path.splitext(name)[0]}.txt, no --prompt)")
        with open(os.path.join(args.folder, name), "rb") as f:
            content = f.read()
        spec = pb2.TaskSpec(backend=args.backend, prompt_text=prompt, ratio=args.ratio,
                            duration_seconds=args.duration,
                            image=pb2.ImageInput(content=content, filename=name))
        for label in args.label:
            key, _, value = label.partition("=")
            spec.labels[key] = value
        # The same image, name and options give the same request id: running
        # the script again returns the same tasks and pays for nothing new.
        digest = hashlib.sha256(content + b"\0" + spec.SerializeToString(deterministic=True))
        requests.append(pb2.SubmitTaskRequest(spec=spec, request_id="py-" + digest.hexdigest()[:32]))
    return requests


def wait_all(pb2, stub, metadata, tasks):
    state_name = pb2.State.Name
    pending = {t.id for t in tasks}
    latest = {t.id: t for t in tasks}
    while pending:
        for task_id in sorted(pending):
            task = stub.WaitTask(pb2.WaitTaskRequest(id=task_id, timeout={"seconds": 1}),
                                 metadata=metadata, timeout=30)
            latest[task_id] = task
            if state_name(task.state) in TERMINAL:
                pending.discard(task_id)
                print(f"{task.id}  {state_name(task.state):<9}  {task.target_filename_stub}"
                      + (f"  {task.error.code}: {task.error.message}" if task.error.code else ""))
    return [latest[t.id] for t in tasks]


def download(pb2, stub, metadata, task, folder):
    path = os.path.join(folder, task.target_filename_stub + ".mp4")
    with open(path + ".part", "wb") as f:
        for chunk in stub.ReadTaskOutput(pb2.ReadTaskOutputRequest(id=task.id), metadata=metadata):
            f.write(chunk.data)
    os.replace(path + ".part", path)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="folder of images")
    parser.add_argument("--server", default=os.environ.get("VIDEOTASK_SERVER", "127.0.0.1:50051"))
    parser.add_argument("--token", default=os.environ.get("VIDEOTASK_TOKEN", ""),
                        help="bearer token (sent only over TLS or to loopback)")
    parser.add_argument("--tls-ca", default="", help="PEM roots: use TLS")
    parser.add_argument("--max-videos", type=int, default=0, help="first N images only (0 = all)")
    parser.add_argument("--prompt", default="", help="prompt of images without a NAME.txt")
    parser.add_argument("--backend", default="")
    parser.add_argument("--ratio", default="16:9")
    parser.add_argument("--duration", type=int, default=0)
    parser.add_argument("--label", action="append", default=[], help="KEY=VALUE, repeatable")
    parser.add_argument("--output", default="", help="download the videos into this folder")
    parser.add_argument("--proto-dir", default=default_proto_dir())
    args = parser.parse_args()

    import grpc  # python3-grpcio

    pb2, pb2_grpc = load_stubs(args.proto_dir)
    names = find_images(args.folder, args.max_videos)
    if not names:
        sys.exit(f"submit_folder: no PNG, JPEG or WebP image in {args.folder}")
    requests = build_requests(pb2, args, names)

    if args.tls_ca:
        with open(args.tls_ca, "rb") as f:
            channel = grpc.secure_channel(args.server, grpc.ssl_channel_credentials(f.read()))
    else:
        channel = grpc.insecure_channel(args.server)
    metadata = [("authorization", "Bearer " + args.token)] if args.token else []
    stub = pb2_grpc.VideoTaskServiceStub(channel)
    try:
        response = stub.BatchSubmitTasks(pb2.BatchSubmitTasksRequest(requests=requests),
                                         metadata=metadata, timeout=60)
    except grpc.RpcError as e:
        print(f"submit_folder: {e.code().name}: {e.details()}", file=sys.stderr)
        return 3 if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) else 2

    tasks, refused = [], 0
    for name, result in zip(names, response.results):
        if result.HasField("error"):
            refused += 1
            print(f"{name}: {result.error.code}: {result.error.message}")
        else:
            tasks.append(result.task)
            print(f"{name} -> {result.task.id} ({result.task.target_filename_stub})")
    tasks = wait_all(pb2, stub, metadata, tasks)
    failed = [t for t in tasks if pb2.State.Name(t.state) != "SUCCEEDED"]
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        for task in tasks:
            if pb2.State.Name(task.state) == "SUCCEEDED":
                print("downloaded", download(pb2, stub, metadata, task, args.output))
    if refused:
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
