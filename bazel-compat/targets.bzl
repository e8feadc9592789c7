"""The targets of @videotask_src that //:BUILD.bazel re-exports under short
names (//:vt_common, //:videotaskd, ...). scripts/bazel-test checks these
lists against the CMake targets."""

# The contract: proto_library, cc_proto_library, gRPC stubs, and CMake's
# videotask_proto (messages + stubs).
PROTO = [
    "video_task_service_proto",
    "video_task_service_cc_proto",
    "video_task_service_cc_grpc",
    "videotask_proto",
]

LIBRARIES = [
    "vt_common",
    "vt_backends_api",
    "vt_backends_http",
    "vt_backends_mock",
    "vt_backends_runway",
    "vt_backends_fal",
    "vt_backends_replicate",
    "vt_backends_builtin",
    "vt_domain",
    "vt_store_api",
    "vt_store_core",
    "vt_store",
    "vt_store_pg",
    "vt_engine",
    "vt_api",
    "vt_app",
    "vt_auth",
    "vt_dashboard",
    "vt_metrics",
    "vt_http",
    "vt_client_channel",
    "vt_cli",
    "vt_loadgen",
    "vt_version",
    "videotask_client",
    "videotask_testing",
    "vt_testing",
    "vt_server_testing",
    "vt_fake_runway",
    "vt_fake_fal",
    "vt_fake_replicate",
    "vt_test_grpc_protos",
    "vt_hardening_testing",
    "vt_store_conformance",
    "vt_pg_testing",
    "vt_metrics_testing",
    "vt_webhooks",
    "vt_webhook_testing",
]

# In the `bin` package of @videotask_src.
BINARIES = [
    "videotaskd",
    "videotask",
    "videotask-bench",
    "videotask-baseline",
    "videotask-bench-fill",
]

# Built on request only (CMake: EXCLUDE_FROM_ALL).
MANUAL = [
    "store_bench",
]

UNIT_TESTS = [
    "capabilities_test",
    "common_test",
    "http_transport_test",
    "runway_capabilities_test",
    "fal_wire_test",
    "replicate_wire_test",
    "backend_registry_test",
    "cli_unit_test",
    "client_channel_test",
    "domain_test",
    "engine_test",
    "engine_ops_test",
    "retention_test",
    "engine_callers_test",
    "transitions_test",
    "error_policy_test",
    "output_writer_test",
    "engine_budgets_test",
    "webhooks_test",
    "webhook_delivery_test",
    "store_test",
    "dashboard_json_test",
    "metrics_test",
    "http_server_test",
    # Needs a PostgreSQL cluster: built, skipped by `bazel test` (.bazelrc).
    "store_pg_test",
    "replicas_test",
]

INTEGRATION_TESTS = [
    "runway_backend_test",
    "fal_backend_test",
    "replicate_backend_test",
    "cli_callers_test",
    "cli_integration_test",
    "cli_ops_test",
    "server_integration_test",
    "disk_full_test",
    "retention_integration_test",
    "validation_integration_test",
    "videotaskd_binary_test",
    "watch_scale_test",
    "metrics_binary_test",
    "runway_integration_test",
    "fal_integration_test",
    "replicate_integration_test",
    "mixed_providers_test",
    "budgets_integration_test",
    "reuse_integration_test",
    "webhooks_integration_test",
    "auth_callers_test",
    "auth_test",
    "crash_test",
    "fault_soak_test",
    "hostile_input_test",
    "secrets_in_logs_test",
    "mock_server_test",
    "dashboard_test",
    # Not here: dashboard_browser_test (tests/browser), a CMake add_test that
    # runs node, puppeteer-core from npm and the system Chromium against the
    # built binaries. It compiles no C++, so tools/check_cmake_sync.py does
    # not ask for it (like bench_smoke); run it with ctest.
]
