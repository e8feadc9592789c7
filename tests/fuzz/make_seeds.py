#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/corpus/ (run from anywhere)."""
import base64
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, value):
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint((num << 3) | 2) + varint(len(value)) + value


def png():
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
            chunk(b"IDAT", zlib.compress(b"\x00\x10\x20\x30")) + chunk(b"IEND", b""))


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
WEBP = b"RIFF" + struct.pack("<I", 12) + b"WEBPVP8 " + b"\x00\x00\x00\x00"


def spec(image, **kw):
    out = b""
    order = [("backend", 1), ("model", 2), ("prompt_text", 4), ("ratio", 5),
             ("duration_seconds", 6), ("seed", 7), ("target_filename_stub", 8), ("priority", 10)]
    for name, num in order:
        if name in kw:
            out += field(num, kw[name])
    out += field(3, image)
    for k, v in kw.get("labels", {}).items():
        out += field(9, field(1, k) + field(2, v))
    return out


def image(**kw):
    nums = {"content": 1, "uri": 2, "server_path": 3, "filename": 4, "mime_type": 5}
    return b"".join(field(nums[k], v) for k, v in kw.items())


def request(spec_bytes, request_id=None):
    out = field(1, spec_bytes)
    if request_id:
        out += field(2, request_id)
    return out


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


P = png()
data_uri = "data:image/png;base64," + base64.b64encode(P).decode()
validation = {
    "content": request(spec(image(content=P, filename="shot_01_draft.png"), prompt_text="zoom",
                            ratio="16:9", duration_seconds=5), "req-1"),
    "runway": request(spec(image(content=JPEG, filename="a.jpg"), backend="runway",
                           model="gen4_turbo", ratio="1280:720", seed=7,
                           labels={"mock.outcome": "fail", "team": "x"})),
    "server_path": request(spec(image(server_path="ok.png"), prompt_text="p")),
    "server_path_sub": request(spec(image(server_path="sub/in.png"))),
    "traversal": request(spec(image(server_path="../outside.png"))),
    "absolute": request(spec(image(server_path="/etc/passwd"))),
    "symlink": request(spec(image(server_path="escape.png"))),
    "symlink_dir": request(spec(image(server_path="up/outside.png"))),
    "data_uri": request(spec(image(uri=data_uri, filename="x.png"))),
    "https": request(spec(image(uri="https://images.invalid/a.png"), backend="runway")),
    "stub": request(spec(image(content=P), target_filename_stub="../../etc/cron.d/x")),
    "unicode": request(spec(image(content=P, filename="\u202e\u0000gnp.exe\U0001F600.png"),
                            prompt_text="e\u0301\u200d\U0001F469\u200d\U0001F4BB" * 50)),
    "webp_lie": request(spec(image(content=WEBP, mime_type="image/png"))),
}
for name, data in validation.items():
    write("fuzz_validation", name, data)

for i, name in enumerate(["elegant_business_classic_tt_draft.png", "video_queue/a_01_2_draft.png",
                          "../../etc/passwd", "..", ".hidden", "-rf", "\u00e9t\u00e9 2024.jpeg",
                          "a" * 300, "x_draft_01_draft_02.webp", "C:\\Users\\x\\y.png", ""]):
    write("fuzz_filename_stub", "seed%02d" % i, name.encode())

for i, token in enumerate([
        base64.urlsafe_b64encode(b"v1.1700000000000000.01J0Z3YV6Q8W3C2M5N7P9R1T4X.abc").decode(),
        base64.urlsafe_b64encode(b"v1.-5.01J0Z3YV6Q8W3C2M5N7P9R1T4X.").decode(),
        "not-base64!!", "", "djEuMS4yLjM", "A" * 300]):
    write("fuzz_page_token", "seed%02d" % i, token.encode())

for name, data in {"png": P, "jpeg": JPEG, "webp": WEBP, "png_cut": P[:30],
                   "data_uri": data_uri.encode(),
                   "data_uri_bad": b"data:image/png;base64,@@@@",
                   "data_uri_type": b"data:text/html;base64,PGI+"}.items():
    write("fuzz_image_input", name, data)

runway = {
    "create_ok": (0, b'{"id":"17f20503-6c24-4c16-946b-35dbbce2af2f"}'),
    "poll_running": (0, b'{"id":"t","status":"RUNNING","progress":0.42,"createdAt":"2024-06-27T19:49:32.334Z"}'),
    "poll_succeeded": (0, b'{"id":"t","status":"SUCCEEDED","output":["https://dnznrvs05pmza.cloudfront.net/a.mp4"]}'),
    "poll_failed": (0, b'{"id":"t","status":"FAILED","failure":"moderation","failureCode":"SAFETY.INPUT.IMAGE"}'),
    "poll_throttled": (0, b'{"id":"t","status":"THROTTLED"}'),
    "error_429": (7, b'{"error":"You have exceeded the rate limit"}'),
    "error_400": (3, b'{"error":"Validation of body failed","issues":[{"path":["promptImage"]}]}'),
    "error_500": (8, b"<html>bad gateway</html>"),
    "progress_odd": (0, b'{"id":"t","status":"RUNNING","progress":1e309}'),
    "deep": (0, b"[" * 5000),
}
for name, (status, body) in runway.items():
    write("fuzz_runway_json", name, bytes([status, 0]) + body)
write("fuzz_runway_json", "retry_after", bytes([7, 1]) + b"120")

# Byte 0 indexes fuzz_replicate_json's status table (1 = 201, 8 = 422, 9 = 429).
replicate = {
    "create_ok": (1, 0, b'{"id":"gm3qorzdhgbfurvjtvhg6dckhu","status":"starting","output":null,"urls":{"get":"https://api.replicate.com/v1/predictions/gm3qorzdhgbfurvjtvhg6dckhu"}}'),
    "poll_processing": (0, 2, b'{"id":"prediction1","status":"processing","logs":"12%"}'),
    "poll_succeeded": (0, 4, b'{"id":"prediction1","status":"succeeded","output":"https://replicate.delivery/xezq/a.mp4","metrics":{"predict_time":41.2}}'),
    "poll_succeeded_list": (0, 0, b'{"id":"prediction1","status":"succeeded","output":["https://replicate.delivery/a.mp4",1]}'),
    "poll_failed_e005": (0, 0, b'{"id":"prediction1","status":"failed","error":"The input or output was flagged as sensitive. (E005)"}'),
    "poll_aborted": (0, 0, b'{"id":"prediction1","status":"aborted","data_removed":true}'),
    "error_422": (8, 0, b'{"title":"Input validation failed","status":422,"detail":"- input.duration: duration must be one of the following: 5, 10\\n","invalid_fields":[{"type":"enum","field":"input.duration"}]}'),
    "error_429_body": (9, 0, b'{"detail":"Request was throttled.","status":429,"retry_after":1}'),
    "file_ok": (1, 0, b'{"id":"f1","urls":{"get":"https://api.replicate.com/v1/files/f1"}}'),
}
for name, (status, flags, body) in replicate.items():
    write("fuzz_replicate_json", name, bytes([status, flags]) + body)
write("fuzz_replicate_json", "retry_after", bytes([9, 1]) + b"30")
