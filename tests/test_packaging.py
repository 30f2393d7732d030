"""What `chalice package --stage prod --pkg-format terraform` produces for this app.

The package runs once per module, with no AWS credentials, in a temporary copy of
the app (app.py, chalicelib/, requirements.txt, .chalice/), so nothing is written
into the work tree. It downloads the Linux arm64 wheels from PyPI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHALICE_DIR = ROOT / ".chalice"
THROTTLING_TF = ROOT / "infrastructure" / "terraform" / "throttling.tf.json"
API_FUNCTION = "api_handler"
CONVERT_FUNCTION = "convert_raw_object"
DAILY_FUNCTION = "build_daily_csv"
ATHENA_STEP_FUNCTION = "athena_daily_step"
POLICY_FILES = {
    API_FUNCTION: "policy-prod.json",
    CONVERT_FUNCTION: "policy-prod-convert.json",
    DAILY_FUNCTION: "policy-prod-daily.json",
    ATHENA_STEP_FUNCTION: "policy-prod-daily.json",
}
EM_AARCH64 = 0xB7
# Variables a package step may need to reach PyPI here (index, proxy, CA bundle).
_PASS_THROUGH = re.compile(
    r"^(PATH|LANG|LC_.*|TMPDIR|PIP_.*|SSL_CERT_.*|NIX_SSL_CERT_FILE|REQUESTS_CA_BUNDLE"
    r"|HTTPS?_PROXY|NO_PROXY|https?_proxy|no_proxy|HOME|XDG_.*)$"
)


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def _chalice_bin() -> str:
    beside = Path(sys.executable).parent / "chalice"
    return str(beside if beside.exists() else ROOT / ".venv" / "bin" / "chalice")


class Package:
    def __init__(self, out: Path, output: str) -> None:
        self.out = out
        self.output = output
        self.tf: dict[str, Any] = _load(out / "chalice.tf.json")
        self.zip = zipfile.ZipFile(out / "deployment.zip")

    def resources(self, kind: str) -> dict[str, Any]:
        found: dict[str, Any] = self.tf.get("resource", {}).get(kind, {})
        return found

    def swagger(self) -> dict[str, Any]:
        body = self.resources("aws_api_gateway_rest_api")["rest_api"]["body"]
        match = re.fullmatch(r"\$\{local\.(\w+)\}", body)
        assert match, body
        swagger: dict[str, Any] = json.loads(self.tf["locals"][match.group(1)])
        return swagger


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Package:
    work = tmp_path_factory.mktemp("package")
    project = work / "project"
    project.mkdir()
    shutil.copy2(ROOT / "app.py", project / "app.py")
    shutil.copy2(ROOT / "requirements.txt", project / "requirements.txt")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "deployed", "deployments")
    shutil.copytree(ROOT / "chalicelib", project / "chalicelib", ignore=ignore)
    shutil.copytree(CHALICE_DIR, project / ".chalice", ignore=ignore)
    env = {key: value for key, value in os.environ.items() if _PASS_THROUGH.match(key)}
    env.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_SHARED_CREDENTIALS_FILE=str(work / "no-credentials"),
        AWS_CONFIG_FILE=str(work / "no-config"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    out = work / "out"
    completed = subprocess.run(
        [_chalice_bin(), "package", "--stage", "prod", "--pkg-format", "terraform", str(out)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    if "Could not install dependencies" in output:
        pytest.fail(f"chalice could not install dependencies for Lambda:\n{output}")
    return Package(out, output)


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    loaded: dict[str, Any] = _load(CHALICE_DIR / "config.json")
    return loaded


@pytest.fixture(scope="module")
def prod_env(config: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = config["stages"]["prod"]["environment_variables"]
    return env


def _function_setting(config: dict[str, Any], function: str, key: str) -> Any:
    """A per-function value, falling back to the stage's and then the top level's."""
    prod = config["stages"]["prod"]
    own = prod.get("lambda_functions", {}).get(function, {})
    for scope in (own, prod, config):
        if key in scope:
            return scope[key]
    return None


# --------------------------------------------------------------------------------------
# chalice.tf.json
# --------------------------------------------------------------------------------------


def test_no_dependency_warning(package: Package) -> None:
    assert "Could not install dependencies" not in package.output


def test_rest_api_routes(package: Package, config: dict[str, Any]) -> None:
    paths = package.swagger()["paths"]
    # Exactly these: the dev stage's inspector (/_dev/events, /_dev/rejected) is not in prod.
    assert set(paths) == {"/events", "/health"}
    assert {"post", "options"} <= set(paths["/events"])
    assert "get" in paths["/health"]
    for methods in paths.values():
        for operation in methods.values():
            integration = operation["x-amazon-apigateway-integration"]
            assert integration["type"] == "aws_proxy"
            assert integration["uri"] == "${aws_lambda_function.api_handler.invoke_arn}"
    deployment = package.resources("aws_api_gateway_deployment")["rest_api"]
    assert deployment["stage_name"] == config["stages"]["prod"]["api_gateway_stage"]


def test_s3_notifications_on_raw_and_results_prefixes(
    package: Package, prod_env: dict[str, str]
) -> None:
    """raw/ objects go to the converter; query results (.csv) under the Athena results
    prefix go to the daily build's next step; nothing else is notified."""
    notifications = list(package.resources("aws_s3_bucket_notification").values())
    assert len(notifications) == 1
    notification = notifications[0]
    assert notification["bucket"] == prod_env["ANALYTICS_BUCKET"]
    targets = {target["lambda_function_arn"]: target for target in notification["lambda_function"]}
    raw = targets.pop(f"${{aws_lambda_function.{CONVERT_FUNCTION}.arn}}")
    assert raw["filter_prefix"] == prod_env.get("RAW_PREFIX", "raw/") == "raw/"
    assert "filter_suffix" not in raw and raw["events"] == ["s3:ObjectCreated:*"]
    results = targets.pop(f"${{aws_lambda_function.{ATHENA_STEP_FUNCTION}.arn}}")
    assert results["filter_prefix"] == prod_env["ATHENA_RESULTS_PREFIX"] == "athena-results/"
    assert results["filter_suffix"] == ".csv" and results["events"] == ["s3:ObjectCreated:*"]
    assert not targets
    permissions = package.resources("aws_lambda_permission")
    s3_permissions = [p for p in permissions.values() if p["principal"] == "s3.amazonaws.com"]
    assert {p["function_name"] for p in s3_permissions} == {
        f"${{aws_lambda_function.{name}.arn}}" for name in (CONVERT_FUNCTION, ATHENA_STEP_FUNCTION)
    }
    for permission in s3_permissions:
        assert permission["source_arn"].endswith(f":s3:::{prod_env['ANALYTICS_BUCKET']}")


def test_daily_schedule(package: Package) -> None:
    rules = package.resources("aws_cloudwatch_event_rule")
    [(rule_name, rule)] = rules.items()
    assert rule["schedule_expression"] == "cron(30 0 * * ? *)"
    targets = package.resources("aws_cloudwatch_event_target")
    [target] = [t for t in targets.values() if rule_name in t["rule"]]
    assert target["arn"] == f"${{aws_lambda_function.{DAILY_FUNCTION}.arn}}"


def test_functions_arm64_runtime_memory_timeout(
    package: Package, config: dict[str, Any], prod_env: dict[str, str]
) -> None:
    functions = package.resources("aws_lambda_function")
    assert set(functions) == {API_FUNCTION, CONVERT_FUNCTION, DAILY_FUNCTION, ATHENA_STEP_FUNCTION}
    for name, function in functions.items():
        assert function["architectures"] == ["arm64"], name
        assert function["runtime"] in ("python3.12", "python3.13"), name
        assert function["memory_size"] == _function_setting(config, name, "lambda_memory_size")
        assert function["timeout"] == _function_setting(config, name, "lambda_timeout")
        assert function["environment"]["variables"] == prod_env, name
        assert function["role"] == f"${{aws_iam_role.{name}_role.arn}}", name
    # The stage's settings go to the API handler; the converters have their own.
    assert functions[CONVERT_FUNCTION]["memory_size"] == 512
    assert functions[DAILY_FUNCTION]["timeout"] == 900


def test_reserved_concurrency(package: Package, config: dict[str, Any]) -> None:
    functions = package.resources("aws_lambda_function")
    api = functions[API_FUNCTION]
    ingestion = config["stages"]["prod"]["lambda_functions"][API_FUNCTION]
    assert api["reserved_concurrent_executions"] == ingestion["reserved_concurrency"]
    # The converters reserve (and so are capped at) a few: a flood of raw objects cannot
    # take the account's whole pool, and the daily build runs once at a time.
    assert 0 < functions[CONVERT_FUNCTION]["reserved_concurrent_executions"] <= 20
    assert functions[DAILY_FUNCTION]["reserved_concurrent_executions"] == 1
    assert 0 < functions[ATHENA_STEP_FUNCTION]["reserved_concurrent_executions"] <= 5
    for name, function in functions.items():
        # Chalice gives a function without its own value the stage's.
        expected = _function_setting(config, name, "reserved_concurrency")
        assert function.get("reserved_concurrent_executions") == expected, name


def test_role_policies_are_the_policy_files(package: Package) -> None:
    policies = package.resources("aws_iam_role_policy")
    assert set(policies) == {f"{name}_role" for name in POLICY_FILES}
    for function, filename in POLICY_FILES.items():
        policy = policies[f"{function}_role"]
        assert json.loads(policy["policy"]) == _load(CHALICE_DIR / filename), function
        assert policy["role"] == f"${{aws_iam_role.{function}_role.id}}"
    # autogen_policy is off: no other policy is attached anywhere.
    assert not package.resources("aws_iam_role_policy_attachment")


# --------------------------------------------------------------------------------------
# deployment.zip
# --------------------------------------------------------------------------------------


def test_zip_contents(package: Package) -> None:
    names = set(package.zip.namelist())
    assert "app.py" in names
    assert "fastjsonschema/__init__.py" in names
    assert "orjson/__init__.pyi" in names or "orjson/__init__.py" in names
    assert "chalicelib/__init__.py" in names
    assert "chalicelib/aws.py" in names  # the client factory app.py uses
    # The Athena SQL the schedule and the results handler build (and the CLI imports).
    assert {"chalicelib/athena/queries.py", "chalicelib/athena/parquet.py"} <= names
    # The user-agent parser, its precompiled rules and the crawler list (ingest/enrich.py).
    assert "ua_parser/regex.py" in names
    assert "ua_parser_builtins/lazy.py" in names
    assert "crawlerdetect/providers/crawlers.py" in names
    assert "chalicelib/ingest/data/crawler_user_agents.json" in names  # chalicelib/ingest/bots.py
    # The command lines stay out: click is a development dependency only.
    assert not [
        n for n in names if n.split("/")[0] in ("click", "clitools.py", "deploy", "exporter")
    ]
    assert "chalicelib/ingest/schema/events.schema.json" in names
    schema = json.loads(package.zip.read("chalicelib/ingest/schema/events.schema.json"))
    assert schema == _load(ROOT / "chalicelib" / "ingest" / "schema" / "events.schema.json")


# Every compiled dependency: orjson is built per CPython version; ua-parser-rs (the
# ua-parser accelerator) against the stable ABI (abi3), which later CPythons load.
@pytest.mark.parametrize("module", ["orjson", "ua_parser_rs"])
def test_compiled_dependencies_are_built_for_the_lambda_runtime(
    package: Package, module: str
) -> None:
    runtime = package.resources("aws_lambda_function")[API_FUNCTION]["runtime"]
    cp = "cp" + runtime.removeprefix("python").replace(".", "")  # python3.13 → cp313
    names = package.zip.namelist()
    extensions = [n for n in names if n.startswith(f"{module}/") and n.endswith(".so")]
    assert len(extensions) == 1, extensions
    [extension] = extensions
    assert f"cpython-{cp.removeprefix('cp')}-aarch64-linux-gnu" in extension or extension.endswith(
        ".abi3.so"
    ), extension
    header = package.zip.read(extension)[:20]
    assert header[:4] == b"\x7fELF"
    assert header[4] == 2, "not a 64-bit ELF"
    assert header[5] == 1, "not little-endian"
    assert int.from_bytes(header[18:20], "little") == EM_AARCH64
    [wheel] = [n for n in names if re.fullmatch(rf"{module}-[^/]+\.dist-info/WHEEL", n)]
    tags = [
        line.split(":", 1)[1].strip()
        for line in package.zip.read(wheel).decode().splitlines()
        if line.startswith("Tag:")
    ]
    assert tags
    for tag in tags:
        python, abi, platform = tag.split("-")
        if abi == "abi3":
            assert python.startswith("cp3") and int(python[3:]) <= int(cp[3:]), tag
        else:
            assert python == cp, tag
        assert platform.endswith("aarch64") and "linux" in platform, tag


# --------------------------------------------------------------------------------------
# The policy files themselves
# --------------------------------------------------------------------------------------


def _statements(filename: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = _load(CHALICE_DIR / filename)["Statement"]
    return statements


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _is_logs_statement(statement: dict[str, Any]) -> bool:
    return all(action.startswith("logs:") for action in _as_list(statement["Action"]))


@pytest.mark.parametrize("filename", sorted(set(POLICY_FILES.values())))
def test_policy_has_no_wildcards(filename: str) -> None:
    for statement in _statements(filename):
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement and "NotResource" not in statement
        for action in _as_list(statement["Action"]):
            assert "*" not in action, (filename, action)
        for resource in _as_list(statement["Resource"]):
            if _is_logs_statement(statement):
                # Only the functions' own log groups (configure-prod fills in the names).
                assert resource.startswith(
                    "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/owned-analytics-prod"
                ), resource
                continue
            assert resource != "*", (filename, statement)
            assert not re.fullmatch(r"arn:[^:]*:[^:]*:[^:]*:[^:]*:\*", resource), resource


def test_api_policy_names_exactly_the_events_and_rejects_streams(
    prod_env: dict[str, str],
) -> None:
    statements = _statements("policy-prod.json")
    firehose = [s for s in statements if not _is_logs_statement(s)]
    assert len(firehose) == 1
    assert _as_list(firehose[0]["Action"]) == ["firehose:PutRecordBatch"]
    names = []
    for resource in _as_list(firehose[0]["Resource"]):
        match = re.fullmatch(
            r"arn:aws:firehose:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
            r"deliverystream/(?P<name>.+)",
            resource,
        )
        assert match, resource
        names.append(match.group("name"))
    assert names == [prod_env["FIREHOSE_STREAM_NAME"], prod_env["REJECTS_STREAM_NAME"]]
    assert prod_env["REJECTS_STREAM_NAME"] != prod_env["FIREHOSE_STREAM_NAME"]
    s3_actions = [a for s in statements for a in _as_list(s["Action"]) if a.startswith("s3:")]
    assert not s3_actions


def test_convert_policy_stays_inside_the_bucket_prefixes(prod_env: dict[str, str]) -> None:
    bucket = f"arn:aws:s3:::{prod_env['ANALYTICS_BUCKET']}"
    prefixes = [prod_env.get(k, d) for k, d in (("RAW_PREFIX", "raw/"), ("CSV_PREFIX", "csv/"))]
    prefixes.append(prod_env.get("ERRORS_PREFIX", "errors/"))
    allowed_objects = {f"{bucket}/{prefix}*" for prefix in prefixes}
    seen: set[str] = set()
    for statement in _statements("policy-prod-convert.json"):
        if _is_logs_statement(statement):
            continue
        for action in _as_list(statement["Action"]):
            assert action.startswith("s3:"), action
        for resource in _as_list(statement["Resource"]):
            seen.add(resource)
            if resource == bucket:
                # Listing the bucket is limited to the raw prefix by a condition.
                assert _as_list(statement["Action"]) == ["s3:ListBucket"]
                listed = statement["Condition"]["StringLike"]["s3:prefix"]
                assert _as_list(listed) == [f"{prod_env.get('RAW_PREFIX', 'raw/')}*"]
            else:
                assert resource in allowed_objects, resource
    read = {r for s in _statements("policy-prod-convert.json") for r in _as_list(s["Resource"])}
    assert f"{bucket}/raw/*" in read and f"{bucket}/csv/*" in read and f"{bucket}/errors/*" in read
    assert seen


def test_daily_policy_is_least_privilege(prod_env: dict[str, str]) -> None:
    """The schedule and the results handler: Athena on the one workgroup, Glue read on the
    two tables, S3 read raw/, write csv/ errors/ parquet/ and the results prefix."""
    bucket = f"arn:aws:s3:::{prod_env['ANALYTICS_BUCKET']}"
    region_account = "us-east-1:123456789012"
    database = prod_env["ATHENA_DATABASE"]
    granted: dict[str, set[str]] = {}
    for statement in _statements("policy-prod-daily.json"):
        if _is_logs_statement(statement):
            continue
        for action in _as_list(statement["Action"]):
            for resource in _as_list(statement["Resource"]):
                granted.setdefault(action, set()).add(resource)
        if statement["Resource"] == bucket and "s3:ListBucket" in statement["Action"]:
            listed = statement["Condition"]["StringLike"]["s3:prefix"]
            assert _as_list(listed) == ["raw/*", "csv/*", "parquet/*", "athena-results/*"]
    objects = {prefix: f"{bucket}/{prefix}*" for prefix in ("raw/", "csv/", "errors/")}
    parquet = f"{bucket}/{prod_env['PARQUET_PREFIX']}*"
    results = f"{bucket}/{prod_env['ATHENA_RESULTS_PREFIX']}*"
    assert granted == {
        "s3:GetObject": {objects["raw/"], results},
        "s3:PutObject": {objects["csv/"], objects["errors/"], parquet, results},
        "s3:AbortMultipartUpload": {objects["csv/"], objects["errors/"], parquet, results},
        "s3:ListMultipartUploadParts": {parquet, results},
        "s3:DeleteObject": {parquet},
        "s3:ListBucket": {bucket},
        "s3:GetBucketLocation": {bucket},
        "s3:ListBucketMultipartUploads": {bucket},
        "athena:StartQueryExecution": {
            f"arn:aws:athena:{region_account}:workgroup/owned-analytics"
        },
        "athena:GetQueryExecution": {f"arn:aws:athena:{region_account}:workgroup/owned-analytics"},
        "athena:StopQueryExecution": {f"arn:aws:athena:{region_account}:workgroup/owned-analytics"},
        **{
            action: {
                f"arn:aws:glue:{region_account}:catalog",
                f"arn:aws:glue:{region_account}:database/{database}",
                f"arn:aws:glue:{region_account}:table/{database}/{prod_env['ATHENA_TABLE']}",
                f"arn:aws:glue:{region_account}:table/{database}/events_daily",
            }
            for action in (
                "glue:GetDatabase",
                "glue:GetTable",
                "glue:GetPartition",
                "glue:GetPartitions",
            )
        },
    }
    assert prod_env["ATHENA_WORKGROUP"] == "owned-analytics"


# --------------------------------------------------------------------------------------
# infrastructure/terraform/throttling.tf.json
# --------------------------------------------------------------------------------------


def test_throttling_tf_refers_to_chalice_resources(package: Package) -> None:
    throttling = _load(THROTTLING_TF)
    variables = throttling["variable"]
    assert variables["throttling_rate_limit"]["default"] == 2000
    assert variables["throttling_burst_limit"]["default"] == 5000
    [settings] = throttling["resource"]["aws_api_gateway_method_settings"].values()
    assert settings["method_path"] == "*/*"
    assert settings["settings"]["throttling_rate_limit"] == "${var.throttling_rate_limit}"
    assert settings["settings"]["throttling_burst_limit"] == "${var.throttling_burst_limit}"
    assert settings["rest_api_id"] == "${aws_api_gateway_rest_api.rest_api.id}"
    assert settings["stage_name"] == "${aws_api_gateway_deployment.rest_api.stage_name}"
    references = re.findall(
        r"\$\{(aws_[a-z_]+)\.([A-Za-z0-9_-]+)\.[a-z_]+\}", json.dumps(throttling)
    )
    assert references
    for kind, name in references:
        assert name in package.resources(kind), f"{kind}.{name} is not in chalice.tf.json"
    # No name clash when the two files sit in one directory.
    for kind, resources in throttling["resource"].items():
        assert not set(resources) & set(package.resources(kind))
    assert not set(variables) & set(package.tf.get("variable", {}))


# --------------------------------------------------------------------------------------
# The zip's dependencies are the runtime lock's
# --------------------------------------------------------------------------------------


def _zip_distributions(package: Package) -> dict[str, str]:
    """Normalized name -> the *.dist-info folder of every distribution in the zip."""
    found = {}
    for name in package.zip.namelist():
        match = re.fullmatch(r"([^/]+)-([^/-]+)\.dist-info/METADATA", name)
        if match:
            found[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = name.rsplit("/", 1)[0]
    return found


@pytest.fixture(scope="module")
def locked_lambda_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Lambda's wheels, fetched by pip with hash checking against the runtime lock."""
    dest = tmp_path_factory.mktemp("locked-wheels")
    runtime = package_runtime()
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
    command += ["--only-binary=:all:", "--implementation", "cp", "--python-version", runtime]
    command += ["--platform", "manylinux2014_aarch64", "--platform", "manylinux_2_17_aarch64"]
    command += ["--require-hashes", "-r", str(ROOT / "requirements.txt"), "--dest", str(dest)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return dest


def package_runtime() -> str:
    """The Python the package targets: the one that runs Chalice here (major.minor)."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def test_the_zip_holds_exactly_the_locked_runtime_set(package: Package) -> None:
    from tests.test_locks import pins

    locked = pins(ROOT / "requirements.txt")
    in_zip = {
        name: folder.removesuffix(".dist-info").rsplit("-", 1)[1]
        for name, folder in _zip_distributions(package).items()
    }
    assert in_zip == locked


def test_the_zip_files_are_the_hash_checked_locked_wheels(
    package: Package, locked_lambda_wheels: Path
) -> None:
    folders = _zip_distributions(package)
    wheels = sorted(locked_lambda_wheels.glob("*.whl"))
    assert len(wheels) == len(folders)
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            [record] = [n for n in archive.namelist() if n.endswith(".dist-info/RECORD")]
            name = re.sub(r"[-_.]+", "-", record.split("-", 1)[0]).lower()
            # RECORD lists every file of the wheel with its SHA-256: equal RECORDs mean
            # the zip holds the very files pip checked against the lock's hashes.
            assert package.zip.read(f"{folders[name]}/RECORD") == archive.read(record), name
