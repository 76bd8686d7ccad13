"""template.yaml is part of the contract: routes, least privilege, conditions, encryption, build."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chatvault.http.routes import routes
from infra.template import ROOT, Stack, load, run_custom_resource
from tests.infrastructure.sam import transformed

TEMPLATE = load()
RESOURCES = TEMPLATE["Resources"]
FUNCTIONS = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function"}


# Every resource a function may name: the table, its owner index, the bucket, and the objects of the
# uploads and exports folders (the only wildcards: object keys under uploads/ and exports/).
# Routes without credentials in every mode: the API document, and a shared conversation (its link is
# the capability)
PUBLIC = {("GET", "/api/v1/openapi.json"), ("GET", "/api/v1/shared/{share_id}")}
ALLOWED_RESOURCES = [
    {"Fn::GetAtt": ["SessionsTable", "Arn"]},
    {"Fn::GetAtt": ["AuditTable", "Arn"]},
    {"Fn::GetAtt": ["LimitsTable", "Arn"]},
    {"Fn::GetAtt": ["KeysTable", "Arn"]},
    {"Fn::Sub": "${SessionsTable.Arn}/index/by_owner"},
    {"Fn::Sub": "${SessionsTable.Arn}/index/by_erasing"},
    {"Fn::Sub": "${SessionsTable.Arn}/index/by_share"},
    {"Fn::GetAtt": ["UploadsBucket", "Arn"]},
    {"Fn::Sub": "${UploadsBucket.Arn}/uploads/*"},
    {"Fn::Sub": "${UploadsBucket.Arn}/exports/*"},
    {"Ref": "FingerprintSecret"},
    {"Fn::GetAtt": ["MessageEventsQueue", "Arn"]},
]


def _snake(logical_id: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", logical_id.removesuffix("Function")).lower()


def _events(fn: dict) -> list[tuple[str, str]]:
    return [
        (e["Properties"]["Method"], e["Properties"]["Path"])
        for e in fn["Properties"].get("Events", {}).values()
        if e["Type"] == "HttpApi"
    ]


def test_uploads_expire_after_the_retention_rounded_up_to_days() -> None:
    for hours, days in (("720", 30), ("1", 1), ("24", 1), ("25", 2)):
        bucket = Stack.from_template({"RetentionHours": hours}).resources("AWS::S3::Bucket")["UploadsBucket"]
        rule = _rule(bucket, "expire-uploads")
        assert rule["Prefix"] == "uploads/"
        assert rule["ExpirationInDays"] == days, hours
        assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}


def _rule(bucket: dict, rule_id: str) -> dict:
    return next(r for r in bucket["LifecycleConfiguration"]["Rules"] if r["Id"] == rule_id)


def test_the_bucket_keeps_no_versions_of_erased_files() -> None:
    """No versioning configuration at all (a "Suspended" bucket still leaves a delete marker named
    uploads/<session_id>/... for every delete), and lifecycle rules that expire noncurrent versions
    and delete markers, for a bucket that was ever versioned."""
    bucket = Stack.from_template().resources("AWS::S3::Bucket")["UploadsBucket"]
    assert "VersioningConfiguration" not in bucket
    backstop = _rule(bucket, "no-versions-left-behind")
    assert backstop["Status"] == "Enabled"
    assert "Prefix" not in backstop  # the whole bucket
    assert backstop["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}
    assert backstop["ExpiredObjectDeleteMarker"] is True


def test_export_objects_expire_after_a_day_at_the_latest() -> None:
    """S3's smallest lifecycle expiry is a day: the backstop behind the sweep's hour."""
    bucket = Stack.from_template().resources("AWS::S3::Bucket")["UploadsBucket"]
    rule = _rule(bucket, "expire-exports")
    assert (rule["Status"], rule["Prefix"], rule["ExpirationInDays"]) == ("Enabled", "exports/", 1)


def test_objects_created_under_uploads_reach_the_confirming_function_through_eventbridge() -> None:
    """The bucket sends its events to EventBridge (a direct S3 notification to a function would be a
    circular dependency: every function names the bucket); one rule takes ObjectCreated of this
    bucket's uploads/ keys to ConfirmUploadFunction, retried."""
    stack = Stack.from_template()
    bucket = stack.resources("AWS::S3::Bucket")["UploadsBucket"]
    assert bucket["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    events = stack.functions()["ConfirmUploadFunction"].events
    (event,) = events.values()
    assert event["Type"] == "EventBridgeRule"
    assert event["Properties"]["Pattern"] == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": ["chatvault-local-uploadsbucket"]},
            "object": {"key": [{"prefix": "uploads/"}]},
        },
    }
    assert event["Properties"]["RetryPolicy"]["MaximumRetryAttempts"] >= 2


def test_bucket_is_private_encrypted_and_tls_only() -> None:
    stack = Stack.from_template()
    bucket = stack.resources("AWS::S3::Bucket")["UploadsBucket"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert bucket["CorsConfiguration"]["CorsRules"][0]["AllowedOrigins"] == ["*"]
    # POST: the upload form; GET: the JS client's openExport reads an export's sealed object
    assert bucket["CorsConfiguration"]["CorsRules"][0]["AllowedMethods"] == ["GET", "POST"]
    (statement,) = stack.resources("AWS::S3::BucketPolicy")["UploadsBucketPolicy"]["PolicyDocument"][
        "Statement"
    ]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_sweep_runs_every_30_minutes_with_its_settings() -> None:
    props = FUNCTIONS["SweepOrphansFunction"]["Properties"]
    (event,) = props["Events"].values()
    assert event == {
        "Type": "Schedule",
        "Properties": {"Schedule": "rate(30 minutes)", "Description": "chatvault orphan upload sweep"},
    }
    assert props["Environment"]["Variables"] == {"ORPHAN_MIN_AGE_MINUTES": "30", "DRY_RUN": "false"}


def test_the_key_is_used_for_decrypt_only_and_only_through_the_services_that_need_it() -> None:
    """With KmsKeyArn, the roles may only decrypt with that key, and only when DynamoDB (the tables),
    Secrets Manager (the fingerprint secret) or Lambda (the variables) asks on their behalf."""
    policy = RESOURCES["KeyUsePolicy"]
    assert policy["Condition"] == "UseCmk"
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "kms:Decrypt"
    assert statement["Resource"] == {"Ref": "KmsKeyArn"}
    services = statement["Condition"]["StringEquals"]["kms:ViaService"]
    assert services == [
        {"Fn::Sub": f"{service}.${{AWS::Region}}.amazonaws.com"}
        for service in ("dynamodb", "secretsmanager", "lambda")
    ]
    encrypted = [name for name, r in RESOURCES.items() if "KmsKeyId" in r.get("Properties", {})]
    assert encrypted  # log groups and the secret name the key; the tables name it in their SSE
    roles = [r for r in _transformed()["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    with_key = [r for r in roles if "KeyUsePolicy" in json.dumps(r["Properties"].get("ManagedPolicyArns"))]
    assert len(with_key) == len(FUNCTIONS)


def test_jwt_mode_is_refused_without_an_issuer_and_an_audience() -> None:
    rule = TEMPLATE["Rules"]["JwtModeNeedsAnIssuerAndAnAudience"]
    assert rule["RuleCondition"] == {
        "Fn::And": [
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "AuthMode"}, "anonymous"]}]},
            {"Fn::Equals": [{"Ref": "CreateUserPool"}, "false"]},
        ]
    }
    asserted = [a["Assert"] for a in rule["Assertions"]]
    assert asserted == [
        {"Fn::Not": [{"Fn::Equals": [{"Ref": name}, ""]}]} for name in ("JwtIssuer", "JwtAudience")
    ]
    assert all(a["AssertDescription"].startswith("AuthMode=jwt or both needs") for a in rule["Assertions"])
    assert "Rules" in _transformed()  # SAM keeps them


API_GATEWAY_LIMIT_S = 30  # an HTTP API's integration timeout, at most 30 s


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_a_function_behind_the_api_answers_before_api_gateway_gives_up(name: str) -> None:
    """Past 30 s API Gateway answers 503 itself: the function's designed answer (503 with Retry-After
    from its deadline, a receipt, an export) must come first, cold start included (about 1 s)."""
    fn = FUNCTIONS[name]
    timeout = fn["Properties"].get("Timeout", TEMPLATE["Globals"]["Function"]["Timeout"])
    if _events(fn):
        assert timeout <= API_GATEWAY_LIMIT_S - 2


def test_no_function_reserves_concurrency() -> None:
    """A new account cannot reserve any (quota 10, 10 kept unreserved): the first deploy would fail.
    The sweep runs one at a time through its lease instead."""
    assert [
        name for name, fn in FUNCTIONS.items() if "ReservedConcurrentExecutions" in fn["Properties"]
    ] == []
    assert "ReservedConcurrentExecutions" not in TEMPLATE["Globals"]["Function"]


def _declared_by_handlers() -> set[tuple[str, str, str]]:
    """(method, path, function) as each function's handler decorator declares it (one document per
    handler, generated as infra/openapi.py does for all of them)."""
    from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge

    declared = set()
    for name, fn in Stack.from_template().functions().items():
        if any(
            e.get("Type") == "HttpApi" and "{proxy+}" not in e["Properties"]["Path"]
            for e in fn.events.values()
        ):
            merge = OpenAPIMerge(title="one handler", version="1")
            merge.add_file(fn.code_dir / "app.py")
            paths = json.loads(merge.get_openapi_json_schema())["paths"]
            declared |= {(m.upper(), p, name) for p, item in paths.items() for m in item}
    return declared


def test_the_template_routes_each_route_to_the_function_whose_handler_declares_it() -> None:
    """A route is declared once, in its handler's decorator; the template, the fallback's table (the
    generated document) and the test helpers follow from it."""
    in_template = {(m, p, name) for name, fn in FUNCTIONS.items() for m, p in _events(fn)}
    declared = _declared_by_handlers()
    assert in_template == {*declared, ("ANY", "/{proxy+}", "RouteFallbackFunction")}
    assert {(m, p) for m, p, _ in declared} == set(routes())


HTTP_ONLY = {"get_api_document": "http/api_document", "route_fallback": "http/route_fallback"}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_one_name_per_use_case_everywhere(name: str) -> None:
    props = FUNCTIONS[name]["Properties"]
    folder = _snake(name)
    assert props["CodeUri"] == f"functions/{folder}/"
    if props.get("Environment", {}).get("Variables", {}).get("AWS_LWA_INVOKE_MODE"):
        # a Lambda Web Adapter function: the adapter starts run.sh, which serves app.py
        assert props["Handler"] == "run.sh"
        assert os.access(ROOT / "functions" / folder / "run.sh", os.X_OK)
    else:
        assert "Handler" not in props  # Globals' app.lambda_handler
        assert TEMPLATE["Globals"]["Function"]["Handler"] == "app.lambda_handler"
    assert (ROOT / "functions" / folder / "app.py").is_file()
    assert (ROOT / "functions" / folder / "requirements.txt").is_file()
    # its use case: logic/<folder>.py, or for the two HTTP-only functions (the document, the fallback)
    # their module in http/
    home = HTTP_ONLY.get(folder, f"logic/{folder}")
    assert (ROOT / "layers/common/chatvault" / f"{home}.py").is_file()
    _assert_own_log_group(name)


def _assert_own_log_group(name: str) -> None:
    """The function names its log group, which is created before it: nothing that runs the function
    early (a custom resource, SnapStart's init) can make Lambda create a group the stack then
    fails to create."""
    short = name.removesuffix("Function")
    log_group = RESOURCES[short + "Logs"]
    assert log_group["Properties"]["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{AWS::StackName}}-{short}"}
    assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert RESOURCES[name]["Properties"]["LoggingConfig"] == {"LogGroup": {"Ref": short + "Logs"}}


def test_the_custom_resource_function_has_its_own_log_group_too() -> None:
    _assert_own_log_group("RetentionDaysFunction")


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_policies_are_least_privilege(name: str) -> None:
    policies = FUNCTIONS[name]["Properties"].get("Policies", [])
    # every function may use the customer managed key, when there is one, and only through it
    assert {"Fn::If": ["UseCmk", {"Ref": "KeyUsePolicy"}, {"Ref": "AWS::NoValue"}]} in policies
    for policy in policies:
        assert isinstance(policy, dict), f"{name}: managed or template policies grant more than needed"
        if "Fn::If" in policy:
            continue
        for statement in policy["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert all("*" not in action for action in actions), (name, actions)
            resources = (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            )
            assert all(r in ALLOWED_RESOURCES for r in resources), (name, resources)


def test_runtime_architecture_and_layer_build() -> None:
    fn_globals = TEMPLATE["Globals"]["Function"]
    assert fn_globals["Runtime"] == "python3.13"
    assert fn_globals["Architectures"] == ["arm64"]
    layer = RESOURCES["CommonLayer"]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    # layers/common/Makefile builds for the template's architecture unless a test asks otherwise
    makefile = (ROOT / "layers/common/Makefile").read_text()
    assert "LAYER_ARCH ?= arm64\n" in makefile
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Properties"]["ContentUri"] == "layers/common/"
    assert not (ROOT / "layers/common/python").exists(), "keep the layer flat: SAM adds python/ itself"


def test_table_has_ttl_on_demand_billing_encryption_and_the_owner_index() -> None:
    table = Stack.from_template().resources("AWS::DynamoDB::Table")["SessionsTable"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["SSESpecification"]["SSEEnabled"] is True
    owner, erasing, share = table["GlobalSecondaryIndexes"]
    assert owner["IndexName"] == "by_owner"
    assert [k["AttributeName"] for k in owner["KeySchema"]] == ["owner_key", "activity_at"]
    assert erasing["IndexName"] == "by_erasing"
    assert erasing["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    # share links by id: sparse (only links carry share_id), keys only (no content in the index)
    assert share["IndexName"] == "by_share"
    assert [k["AttributeName"] for k in share["KeySchema"]] == ["share_id"]
    assert share["Projection"] == {"ProjectionType": "KEYS_ONLY"}


def _pitr(stack: Stack) -> dict[str, bool]:
    return {
        name: table.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled", False)
        for name, table in stack.resources("AWS::DynamoDB::Table").items()
    }


def test_point_in_time_recovery_is_on_for_the_data_and_audit_tables_and_never_for_the_keys() -> None:
    """Crypto-shredding makes backups safe: the sessions table holds only sealed content and the audit
    table no content, so both are recoverable by default; the keys table never is (a backup of the
    keys would bring back every conversation erased since)."""
    assert TEMPLATE["Parameters"]["PointInTimeRecovery"]["Default"] == "true"
    default = _pitr(Stack.from_template())
    assert default["SessionsTable"] is True
    assert default["AuditTable"] is True
    assert default["KeysTable"] is False
    off = _pitr(Stack.from_template({"PointInTimeRecovery": "false"}))
    assert (off["SessionsTable"], off["AuditTable"], off["KeysTable"]) == (False, False, False)
    keys = RESOURCES["KeysTable"]["Properties"]
    assert keys["PointInTimeRecoverySpecification"] == {
        "PointInTimeRecoveryEnabled": False
    }  # not a parameter
    assert keys["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_auth_mode_switches_the_jwt_authorizer_on_every_session_route() -> None:
    anonymous = Stack.from_template()
    jwt = Stack.from_template({"AuthMode": "jwt", "JwtIssuer": "https://issuer.test", "JwtAudience": "aud"})
    both = Stack.from_template({"AuthMode": "both", "JwtIssuer": "https://issuer.test", "JwtAudience": "aud"})
    service = {(m, p) for m, p in routes() if p.startswith("/api/v1/service/")}
    assert len(service) == 3
    for stack in (anonymous, jwt, both):  # the service writer's routes are IAM-only in every mode
        assert {(r.method, r.path) for r in stack.routes() if r.iam} == service
    assert not any(r.jwt for r in anonymous.routes())
    assert not any(r.jwt for r in both.routes())  # both: the functions verify the optional JWT
    guarded = {(r.method, r.path) for r in jwt.routes() if r.jwt}
    assert guarded == set(routes()) - PUBLIC - service
    api = jwt.resources("AWS::Serverless::HttpApi")["ChatApi"]
    config = api["DefinitionBody"]["components"]["securitySchemes"]["JwtAuthorizer"][
        "x-amazon-apigateway-authorizer"
    ]
    assert config["jwtConfiguration"] == {"issuer": "https://issuer.test", "audience": ["aud"]}
    schemes = anonymous.resources("AWS::Serverless::HttpApi")["ChatApi"]["DefinitionBody"]["components"]
    assert set(schemes["securitySchemes"]) == {"AWS_IAM"}
    assert schemes["securitySchemes"]["AWS_IAM"]["x-amazon-apigateway-authtype"] == "awsSigv4"


def test_api_has_cors_throttling_and_access_logs_without_ip_addresses() -> None:
    api = Stack.from_template().resources("AWS::Serverless::HttpApi")["ChatApi"]
    assert api["CorsConfiguration"]["AllowOrigins"] == ["*"]
    assert "x-session-token" in api["CorsConfiguration"]["AllowHeaders"]
    assert api["DefaultRouteSettings"]["ThrottlingRateLimit"] == 50
    access_format = api["AccessLogSettings"]["Format"]
    json.loads(access_format.replace("\n", ""))
    assert "sourceIp" not in access_format
    assert "userAgent" not in access_format


_transformed = transformed


def test_sam_transform_keeps_the_authorizer_switch_on_each_route() -> None:
    """Run SAM's own translator: the jwt switch must survive it, with the Lambda integrations merged in."""
    out = _transformed()
    (api,) = [r for r in out["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Api"]
    paths = api["Properties"]["Body"]["paths"]
    for method, path, function in sorted(_declared_by_handlers()):
        operation = paths[path][method.lower()]
        if (method, path) in PUBLIC:
            assert "security" not in operation  # the document, a shared conversation: no credentials
            continue
        if path.startswith("/api/v1/service/"):
            assert operation["security"] == [{"AWS_IAM": []}]
        else:
            assert operation["security"] == {"Fn::If": ["IsJwt", [{"JwtAuthorizer": []}], []]}
        assert f"{function}Aliaslive" in json.dumps(operation["x-amazon-apigateway-integration"]["uri"])
    assert "security" not in paths["/{proxy+}"]["x-amazon-apigateway-any-method"]
    schemes = api["Properties"]["Body"]["components"]["securitySchemes"]
    assert schemes["JwtAuthorizer"]["Fn::If"][0] == "IsJwt"
    assert schemes["AWS_IAM"]["x-amazon-apigateway-authtype"] == "awsSigv4"


def test_snapstart_is_opt_in_and_everything_invokes_the_published_alias() -> None:
    """SnapStart applies to published versions only: every function publishes one to its `live`
    alias, the API, the schedule and their permissions name the alias, and SnapStart follows the
    parameter (off by default)."""
    assert TEMPLATE["Parameters"]["SnapStart"]["Default"] == "false"
    assert TEMPLATE["Conditions"]["SnapStartOn"] == {"Fn::Equals": [{"Ref": "SnapStart"}, "true"]}
    resources = _transformed()["Resources"]
    functions = [k for k, v in resources.items() if v["Type"] == "AWS::Lambda::Function"]
    for name in FUNCTIONS:
        assert name in functions
        assert resources[name]["Properties"]["SnapStart"] == {
            "ApplyOn": {"Fn::If": ["SnapStartOn", "PublishedVersions", "None"]}
        }
        alias = resources[f"{name}Aliaslive"]
        assert alias["Type"] == "AWS::Lambda::Alias"
        assert alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][1] == "Version"
    permissions = [v for v in resources.values() if v["Type"] == "AWS::Lambda::Permission"]
    assert permissions
    assert all(p["Properties"]["FunctionName"]["Ref"].endswith("Aliaslive") for p in permissions)
    targets = sorted(
        v["Properties"]["Targets"][0]["Arn"]["Ref"]
        for v in resources.values()
        if v["Type"] == "AWS::Events::Rule"
    )
    assert targets == ["ConfirmUploadFunctionAliaslive", "SweepOrphansFunctionAliaslive"]


# ---- every deploy reaches the `live` alias ---------------------------------------------------------


def _published_versions(parameters: dict[str, str] | None = None, layer: str = "s3://bucket/layer") -> dict:
    """Each function's version as CloudFormation creates it from the transformed template for these
    parameter values and this build of the layer: {function: (logical id, description)}. Every property
    of AWS::Lambda::Version requires replacement, so a new logical id or a new description publishes a
    new version (and moves the alias, which names it)."""
    values = {name: str(p.get("Default", "")) for name, p in TEMPLATE["Parameters"].items()}
    values |= parameters or {}
    resources = _transformed(json.dumps(parameters or {}, sort_keys=True), layer)["Resources"]
    # the digest as the custom resource computes it, from its properties as CloudFormation resolves them
    # (the layer's Ref is its ARN, which differs for each new LayerVersion resource)
    digest = ""
    if "ConfigDigest" in resources:
        digest_properties = {
            key: values.get(value["Ref"], value["Ref"])
            for key, value in resources["ConfigDigest"]["Properties"].items()
            if key != "ServiceToken"
        }
        code = RESOURCES["RetentionDaysFunction"]["Properties"]["Code"]["ZipFile"]
        data = run_custom_resource(code, "ConfigDigest", "Custom::ConfigDigest", digest_properties)
        digest = data["Digest"]
    versions = {}
    for name, resource in resources.items():
        if resource["Type"] == "AWS::Lambda::Version":
            description = resource["Properties"].get("Description", {"Fn::Sub": ""})["Fn::Sub"]
            function = resource["Properties"]["FunctionName"]["Ref"]
            versions[function] = (name, description.replace("${ConfigDigest.Digest}", digest))
    assert set(versions) == set(FUNCTIONS)
    return versions


@pytest.mark.parametrize(
    ("change", "parameters", "layer"),
    [
        ("the shared layer", {}, "s3://bucket/layer-rebuilt"),
        ("LogLevel", {"LogLevel": "DEBUG"}, "s3://bucket/layer"),
        (
            "AuthMode",
            {"AuthMode": "jwt", "JwtIssuer": "https://issuer.example", "JwtAudience": "c"},
            "s3://bucket/layer",
        ),
        ("a limit", {"AppendRateLimit": "60"}, "s3://bucket/layer"),
    ],
)
def test_a_deploy_that_changes_only_the_layer_or_a_parameter_publishes_every_function_again(
    change: str, parameters: dict[str, str], layer: str
) -> None:
    """Nearly all code lives in the layer and behaviour follows the parameters: a deploy that changes
    either must move every function's `live` alias to a new version, or production keeps the old."""
    before = _published_versions()
    after = _published_versions(parameters, layer)
    for function, version in before.items():
        assert after[function] != version, f"{function} keeps its version when {change} changes"
    assert _published_versions() == before  # the same deploy again publishes nothing new


def _parameters_in(node: Any, out: set[str]) -> set[str]:
    """The parameters an expression reads, directly, in a !Sub or through a condition."""
    parameters, conditions = TEMPLATE["Parameters"], TEMPLATE["Conditions"]
    if isinstance(node, list):
        for item in node:
            _parameters_in(item, out)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and value in parameters:
                out.add(value)
            elif key == "Fn::If":
                _parameters_in(conditions[value[0]], out)
                _parameters_in(value[1:], out)
            elif key == "Condition" and isinstance(value, str):
                _parameters_in(conditions[value], out)
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                out.update(n for n in re.findall(r"\$\{([^}.!]+)\}", text) if n in parameters)
                _parameters_in(value, out)
            else:
                _parameters_in(value, out)
    return out


def test_the_config_digest_covers_every_parameter_the_functions_read() -> None:
    read: set[str] = set()
    _parameters_in(TEMPLATE["Globals"]["Function"], read)
    for fn in FUNCTIONS.values():
        _parameters_in(fn["Properties"], read)
    digest = RESOURCES["ConfigDigest"]["Properties"]
    assert {key: value for key, value in digest.items() if key in read} == {p: {"Ref": p} for p in read}
    assert digest["Layer"] == {"Ref": "CommonLayer"}
    assert RESOURCES["CommonLayer"]["Properties"]["PublishLambdaVersion"] is True
    variables = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    # in the configuration too, so a new digest is always a configuration Lambda publishes anew
    assert variables["CONFIG_DIGEST"] == {"Fn::GetAtt": ["ConfigDigest", "Digest"]}
    for name, fn in FUNCTIONS.items():
        assert fn["Properties"]["AutoPublishAliasAllProperties"] is True, name
        assert fn["Properties"]["VersionDescription"] == {"Fn::Sub": "config ${ConfigDigest.Digest}"}, name


def _config_skips() -> dict[str, str]:
    """.checkov.yaml's skip-check entries, each with the reason written in the comment above it."""
    skips: dict[str, str] = {}
    reason = ""
    for line in (Path(__file__).resolve().parents[2] / ".checkov.yaml").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("# CKV_AWS_"):
            reason = stripped
        elif stripped.startswith("- CKV_AWS_"):
            check = stripped.removeprefix("- ")
            assert reason.startswith(f"# {check}:"), f"{check} needs its reason in the comment above it"
            skips[check] = reason
            reason = ""
    return skips


def test_every_skipped_security_check_is_justified_once() -> None:
    """Checks skipped for every function are in .checkov.yaml (one copy, with its reason); a check
    skipped for one resource stays in its Metadata, beside it, with its reason."""
    everywhere = _config_skips()
    assert set(everywhere) == {"CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"}
    assert all(len(reason) > 40 for reason in everywhere.values())
    skipped = 0
    for name, resource in RESOURCES.items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert re.fullmatch(r"CKV_AWS_\d+", skip["id"]), name
            assert skip["id"] not in everywhere, f"{name}: {skip['id']} is skipped in .checkov.yaml already"
            assert len(skip.get("comment", "")) > 20, f"{name}: {skip['id']} needs a reason"
            skipped += 1
    assert skipped > 0


# ---- every combination of the template's switches, as CloudFormation would resolve it ------------

SWITCHES = {
    "AuthMode": ["anonymous", "jwt", "both"],
    "CreateUserPool": ["false", "true"],
    "KmsKeyArn": ["", "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"],
    "EnableTracing": ["false", "true"],
    "SnapStart": ["false", "true"],
}
COMBINATIONS = [
    combination
    for combination in (
        dict(zip(SWITCHES, values, strict=True)) for values in itertools.product(*SWITCHES.values())
    )
    # a pool needs accounts (jwt or both mode)
    if combination["AuthMode"] != "anonymous" or combination["CreateUserPool"] == "false"
]
NO_VALUE = object()


def _value(expr: Any, params: dict[str, str]) -> str:
    """A condition operand: a string, a parameter, or a join of a list parameter."""
    if isinstance(expr, dict) and "Ref" in expr:
        return params[expr["Ref"]]
    if isinstance(expr, dict) and "Fn::Join" in expr:
        separator, listed = expr["Fn::Join"]
        return separator.join(params[listed["Ref"]].split(","))
    return str(expr)


def _condition(expr: Any, params: dict[str, str], conditions: dict[str, Any]) -> bool:
    ((key, value),) = expr.items()
    if key == "Condition":
        return _condition(conditions[value], params, conditions)
    if key == "Fn::Equals":
        left, right = (_value(v, params) for v in value)
        return bool(left == right)
    if key == "Fn::Not":
        return not _condition(value[0], params, conditions)
    if key == "Fn::And":
        return all(_condition(v, params, conditions) for v in value)
    if key == "Fn::Or":
        return any(_condition(v, params, conditions) for v in value)
    raise AssertionError(f"unknown condition function {key}")


def _resolve(node: Any, truth: dict[str, bool]) -> Any:
    """Fn::If taken, AWS::NoValue dropped: what CloudFormation deploys for these parameters."""
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            name, yes, no = node["Fn::If"]
            return _resolve(yes if truth[name] else no, truth)
        if node == {"Ref": "AWS::NoValue"}:
            return NO_VALUE
        resolved = {k: _resolve(v, truth) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}
    if isinstance(node, list):
        return [v for v in (_resolve(item, truth) for item in node) if v is not NO_VALUE]
    return node


def _deployed(params: dict[str, str]) -> dict[str, Any]:
    template = json.loads(json.dumps(_transformed()))
    chosen = dict(params)
    if params["AuthMode"] != "anonymous" and params["CreateUserPool"] == "false":
        chosen |= {"JwtIssuer": "https://issuer.example", "JwtAudience": "client"}
    values = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()} | chosen
    conditions = template.pop("Conditions")
    truth = {name: _condition(expr, values, conditions) for name, expr in conditions.items()}
    for section in ("Resources", "Outputs"):
        template[section] = {
            name: {k: v for k, v in body.items() if k != "Condition"}
            for name, body in template[section].items()
            if truth.get(body.get("Condition", ""), True)
        }
    for name, value in chosen.items():
        template["Parameters"][name]["Default"] = value
    deployed: dict[str, Any] = _resolve(template, truth)
    # a parameter only conditions used is gone with them (CloudFormation has resolved it)
    text = json.dumps({k: v for k, v in deployed.items() if k != "Parameters"})
    deployed["Parameters"] = {
        name: p
        for name, p in deployed["Parameters"].items()
        if f'"Ref": "{name}"' in text or f"${{{name}}}" in text
    }
    return deployed


def _of_type(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_every_combination_of_switches_deploys_what_it_says(tmp_path: Path) -> None:
    """AuthMode x CreateUserPool x KmsKeyArn x EnableTracing x SnapStart: the transformed template, as
    CloudFormation resolves it for each, passes cfn-lint (no reference to a resource the combination
    does not create) and holds exactly the resources and settings the switches ask for."""
    files = []
    for n, params in enumerate(COMBINATIONS):
        template = _deployed(params)
        jwt, pool = (
            params["AuthMode"] == "jwt",
            params["CreateUserPool"] == "true" and params["AuthMode"] != "anonymous",
        )
        kms, tracing, snapstart = (
            params["KmsKeyArn"] != "",
            params["EnableTracing"] == "true",
            params["SnapStart"] == "true",
        )
        functions = _of_type(template, "AWS::Lambda::Function")
        serverless = {name: fn for name, fn in functions.items() if name in FUNCTIONS}
        assert len(serverless) == len(FUNCTIONS), params
        for fn in serverless.values():
            props = fn["Properties"]
            assert "ReservedConcurrentExecutions" not in props
            assert props["SnapStart"] == {"ApplyOn": "PublishedVersions" if snapstart else "None"}
            assert props["TracingConfig"]["Mode"] == ("Active" if tracing else "PassThrough")
            assert ("KmsKeyArn" in props) == kms
        assert ("KeyUsePolicy" in template["Resources"]) == kms
        assert len(_of_type(template, "AWS::CloudWatch::Alarm")) == len(_alarms())
        (topic,) = _of_type(template, "AWS::SNS::Topic").values()
        assert ("KmsMasterKeyId" in topic["Properties"]) == kms
        assert _of_type(template, "AWS::CloudWatch::Dashboard")
        assert template["Rules"] == TEMPLATE["Rules"]
        assert bool(_of_type(template, "AWS::Cognito::UserPool")) == pool
        assert ("UserPoolClientId" in template["Outputs"]) == pool
        (api,) = _of_type(template, "AWS::ApiGatewayV2::Api").values()
        schemes = api["Properties"]["Body"]["components"]["securitySchemes"]
        assert set(schemes) == ({"AWS_IAM", "JwtAuthorizer"} if jwt else {"AWS_IAM"})
        assert "Roles" not in template["Resources"]["ServiceWriterPolicy"]["Properties"]
        env = serverless["AppendMessageFunction"]["Properties"]["Environment"]["Variables"]
        assert env["AUTH_MODE"] == {"Ref": "AuthMode"}
        if pool:
            assert env["JWT_AUDIENCE"] == {"Ref": "UserPoolClient"}
        else:
            assert env["JWT_AUDIENCE"] == {"Ref": "JwtAudience"}
        if jwt:
            config = schemes["JwtAuthorizer"]["x-amazon-apigateway-authorizer"]["jwtConfiguration"]
            if pool:
                assert "${UserPool}" in json.dumps(config["issuer"])
                assert config["audience"] == [{"Ref": "UserPoolClient"}]
            else:
                assert config == {"issuer": {"Ref": "JwtIssuer"}, "audience": [{"Ref": "JwtAudience"}]}
        files.append(tmp_path / f"combination-{n}.json")
        files[-1].write_text(json.dumps(template))
    lint = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


# ---- operating it ----------------------------------------------------------------------------------


def _alarms() -> dict[str, Any]:
    return {k: v["Properties"] for k, v in RESOURCES.items() if v["Type"] == "AWS::CloudWatch::Alarm"}


def test_every_alarm_notifies_the_topic_and_the_email_subscription_is_optional() -> None:
    alarms = _alarms()
    assert len(alarms) >= 2 * len(FUNCTIONS) + 5
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert alarm["OKActions"] == [{"Ref": "AlarmTopic"}], name
        assert 'README, "Operating it"' in alarm["AlarmDescription"], name
    subscription = RESOURCES["AlarmSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    assert TEMPLATE["Parameters"]["AlarmEmail"]["Default"] == ""


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_has_an_errors_and_a_throttles_alarm(name: str) -> None:
    alarms = _alarms()
    for metric in ("Errors", "Throttles"):
        alarm = alarms[f"{name.removesuffix('Function')}{metric}Alarm"]
        assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", metric)
        assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": name}}]
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")


def test_the_api_storage_and_sweep_alarms_watch_what_they_say() -> None:
    alarms = _alarms()
    api = alarms["Api5xxAlarm"]["Metrics"]
    assert api[0]["Expression"] == "IF(requests >= 20, 100 * errors / requests, 0)"
    assert {m["Id"]: m["MetricStat"]["Metric"]["MetricName"] for m in api[1:]} == {
        "errors": "5xx",
        "requests": "Count",
    }
    throttled = alarms["DynamoDbThrottleAlarm"]["Metrics"]
    tables = {json.dumps(m["MetricStat"]["Metric"]["Dimensions"]) for m in throttled[1:]}
    assert len(tables) == 3  # every table
    assert {m["MetricStat"]["Metric"]["MetricName"] for m in throttled[1:]} == {
        "ReadThrottleEvents",
        "WriteThrottleEvents",
    }
    assert alarms["SweepErrorsAlarm"]["MetricName"] == "Errors"
    assert (
        alarms["SweepIncompleteAlarm"]["MetricName"],
        alarms["SweepIncompleteAlarm"]["EvaluationPeriods"],
    ) == (
        "SweepsIncomplete",
        3,
    )
    not_running = alarms["SweepNotRunningAlarm"]["Metrics"]
    assert not_running[1]["MetricStat"]["Metric"]["MetricName"] == "Invocations"


# A small model of how CloudWatch evaluates an alarm, enough to catch the two ways an alarm can be
# silently wrong: metric math over series that have no data, and missing data before a metric exists.
# A series is {period: value} for the periods that have data, or None when the metric does not exist
# (never published, or not in two weeks).
_Series = dict[int, float] | None
_PERIODS = range(-6, 0)  # the six periods before now


class _Math:
    def __init__(self, points: dict[int, float], exists: bool = True) -> None:
        self.points, self.exists = points, exists

    def __add__(self, other: _Math) -> _Math:  # an operator has a value only where both sides do
        return _Math({t: v + other.points[t] for t, v in self.points.items() if t in other.points})


def _sum(series: list[_Math]) -> _Math:  # SUM([...]) adds what each period has
    periods = {t for s in series for t in s.points}
    return _Math({t: sum(s.points.get(t, 0) for s in series) for t in periods})


def _fill(series: _Math, value: float) -> _Math:  # nothing to fill while the metric does not exist
    if not series.exists:
        return series
    return _Math({t: series.points.get(t, value) for t in _PERIODS})


def _alarm_state(alarm: dict[str, Any], data: dict[str, _Series]) -> str:
    """ALARM or OK for `data`, keyed by the alarm's metric ids (or "metric" for a plain one)."""
    series = {name: _Math(points or {}, exists=points is not None) for name, points in data.items()}
    if "Metrics" in alarm:
        (returned,) = [m for m in alarm["Metrics"] if m.get("ReturnData", True)]
        namespace: dict[str, Any] = {"SUM": _sum, "FILL": _fill}
        for metric in alarm["Metrics"]:
            if "MetricStat" in metric:
                namespace[metric["Id"]] = series.get(metric["Id"], _Math({}, exists=False))
        points = eval(returned["Expression"], namespace).points
    else:
        points = series.get("metric", _Math({})).points
    breaching = 0
    for period in _PERIODS[-alarm["EvaluationPeriods"] :]:
        if period not in points:
            breaching += alarm["TreatMissingData"] == "breaching"
            continue
        value, threshold = points[period], alarm["Threshold"]
        breaching += {
            "GreaterThanOrEqualToThreshold": value >= threshold,
            "LessThanThreshold": value < threshold,
        }[alarm["ComparisonOperator"]]
    return "ALARM" if breaching >= alarm.get("DatapointsToAlarm", alarm["EvaluationPeriods"]) else "OK"


def test_one_throttled_table_fires_the_dynamodb_throttle_alarm() -> None:
    alarm = _alarms()["DynamoDbThrottleAlarm"]
    series = [m["Id"] for m in alarm["Metrics"] if "MetricStat" in m]
    for throttled in series:  # only this series has data (tables that are not throttled publish nothing)
        assert _alarm_state(alarm, {throttled: {-1: 3}}) == "ALARM", throttled
    assert _alarm_state(alarm, {}) == "OK"


def test_the_no_sweep_alarm_is_quiet_before_the_first_run_and_fires_when_runs_stop() -> None:
    alarm = _alarms()["SweepNotRunningAlarm"]
    (metric,) = [m["Id"] for m in alarm["Metrics"] if "MetricStat" in m] if "Metrics" in alarm else ["metric"]
    assert _alarm_state(alarm, {metric: None}) == "OK"  # a fresh deploy: the function never ran yet
    assert _alarm_state(alarm, {metric: dict.fromkeys(_PERIODS, 2.0)}) == "OK"  # twice an hour
    assert _alarm_state(alarm, {metric: {-6: 2.0, -5: 2.0, -4: 2.0, -3: 1.0}}) == "ALARM"  # stopped


def test_the_dashboard_shows_requests_latency_errors_appends_deletes_sweep_and_throttles() -> None:
    body = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(body)["widgets"]
    text = json.dumps(widgets)
    for figure in (
        '"Count"',
        '"p50"',
        '"p99"',
        '"5xx"',
        "Errors",
        "Throttles",
        "MessagesAppended",
        "SessionsErased",
    ):
        assert figure in text, figure
    for figure in (
        "PrefixesDeleted",
        "ObjectsDeleted",
        "SweepsIncomplete",
        "ReadThrottleEvents",
        "WriteThrottleEvents",
        "RepliesStored",
        'MetricName=\\"FeedbackUp\\"',
        'MetricName=\\"FeedbackDown\\"',
        "ExpiredFilesRemoved",
    ):
        assert figure in text, figure
    names = set(re.findall(r"\$\{(\w+)\}", body)) - {"AWS::Region", "AWS::StackName"}
    assert names <= set(RESOURCES), names - set(RESOURCES)


def test_the_metrics_the_alarms_and_dashboard_name_are_published() -> None:
    """Custom metrics the template watches are ones the code publishes (a renamed metric would leave
    an alarm watching nothing)."""
    layer = "\n".join(p.read_text() for p in (ROOT / "layers/common/chatvault").rglob("*.py"))
    watched = {a["MetricName"] for a in _alarms().values() if a.get("Namespace") == "ChatVault"}
    body = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    watched |= set(re.findall(r'\["ChatVault", "(\w+)"', body))
    assert watched
    for metric in watched:
        assert f'name="{metric}"' in layer or f'"{metric}":' in layer, metric


def test_the_service_writer_policy_grants_invoke_on_the_service_routes_only() -> None:
    policy = RESOURCES["ServiceWriterPolicy"]["Properties"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Action"] == ["execute-api:Invoke"]
    granted = [r["Fn::Sub"].split("${ChatApi}")[1] for r in statement["Resource"]]
    assert granted == ["/*/GET/api/v1/service/sessions/*", "/*/POST/api/v1/service/sessions/*/messages"]
    assert policy["Roles"] == {
        "Fn::If": ["HasServiceWriterRoles", {"Ref": "ServiceWriterRoles"}, {"Ref": "AWS::NoValue"}]
    }
    assert TEMPLATE["Outputs"]["ServiceWriterPolicyArn"]["Value"] == {"Ref": "ServiceWriterPolicy"}
    assert TEMPLATE["Parameters"]["ClientRoles"]["Default"] == "user"


# ---- the chat's model ------------------------------------------------------------------------------


def _chat_function(**params: str) -> dict[str, Any]:
    return Stack.from_template(params).resources("AWS::Serverless::Function")["ChatFunction"]


def _bedrock_grants(fn: dict[str, Any]) -> dict[str, list[str]]:
    grants: dict[str, list[str]] = {}
    for policy in fn["Policies"]:
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            for action in statement["Action"]:
                if action.startswith("bedrock:"):
                    resources = statement["Resource"]
                    grants[action] = resources if isinstance(resources, list) else [resources]
    return grants


def test_the_chat_may_invoke_its_model_and_nothing_else() -> None:
    """Least privilege for every kind of ModelId: InvokeModel (what Converse needs) on the model; for an
    inference profile, on the profile and on the foundation model it routes to in any region;
    ApplyGuardrail only with a guardrail; nothing with the stand-in. ModelId=auto resolves to this
    region's Nova Micro profile, in the function's environment too."""
    region, account = "us-east-1", "123456789012"
    auto = _chat_function()
    assert auto["Environment"]["Variables"]["MODEL_ID"] == "us.amazon.nova-micro-v1:0"
    assert _bedrock_grants(auto) == {
        "bedrock:InvokeModel": [
            f"arn:aws:bedrock:{region}:{account}:inference-profile/us.amazon.nova-micro-v1:0",
            "arn:aws:bedrock:*::foundation-model/amazon.nova-micro-v1:0",
        ]
    }
    profile = _chat_function(ModelId="eu.anthropic.claude-3-5-haiku-20241022-v1:0")
    assert _bedrock_grants(profile)["bedrock:InvokeModel"] == [
        f"arn:aws:bedrock:{region}:{account}:inference-profile/eu.anthropic.claude-3-5-haiku-20241022-v1:0",
        "arn:aws:bedrock:*::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0",
    ]
    model = _chat_function(ModelId="amazon.nova-lite-v1:0")
    assert model["Environment"]["Variables"]["MODEL_ID"] == "amazon.nova-lite-v1:0"
    assert _bedrock_grants(model) == {
        "bedrock:InvokeModel": [f"arn:aws:bedrock:{region}::foundation-model/amazon.nova-lite-v1:0"]
    }
    guarded = _chat_function(GuardrailId="abc123", GuardrailVersion="2")
    assert _bedrock_grants(guarded)["bedrock:ApplyGuardrail"] == [
        f"arn:aws:bedrock:{region}:{account}:guardrail/abc123"
    ]
    assert guarded["Environment"]["Variables"]["GUARDRAIL_VERSION"] == "2"
    stand_in = _chat_function(ModelId="stand-in", GuardrailId="abc123")
    assert _bedrock_grants(stand_in) == {}
    assert stand_in["Environment"]["Variables"]["MODEL_ID"] == "stand-in"
    # the streaming chat may stream from the same model (ConverseStream), no other function may call
    # Bedrock
    functions = Stack.from_template().resources("AWS::Serverless::Function")
    streaming = _bedrock_grants(functions["ChatStreamFunction"])
    same = _bedrock_grants(auto)["bedrock:InvokeModel"]
    assert streaming == {"bedrock:InvokeModelWithResponseStream": same}
    for name, fn in functions.items():
        if name not in ("ChatFunction", "ChatStreamFunction"):
            assert _bedrock_grants(fn) == {}, name


def test_model_ids_the_parameter_accepts() -> None:
    pattern = re.compile(TEMPLATE["Parameters"]["ModelId"]["AllowedPattern"])
    for good in (
        "auto",
        "stand-in",
        "amazon.nova-micro-v1:0",
        "us.amazon.nova-micro-v1:0",
        "eu.anthropic.claude-3-5-haiku-20241022-v1:0",
        "meta.llama3-1-8b-instruct-v1:0",
    ):
        assert pattern.match(good), good
    for bad in ("gpt-4", "arn:aws:bedrock:us-east-1::foundation-model/x.y", "a b.c", " "):
        assert not pattern.match(bad), bad
    # empty: no model, the chat routes are off (a team's own bot answers), and nothing may call Bedrock
    assert pattern.match("")
    off = _chat_function(ModelId="")
    assert off["Environment"]["Variables"]["MODEL_ID"] == ""
    assert _bedrock_grants(off) == {}


# ---- the bot's events ------------------------------------------------------------------------------


def test_the_stream_carries_keys_only_and_wakes_the_publisher_for_new_messages_only() -> None:
    """A stream record outlives an erase by a day: it must hold no content. Only INSERTs of message
    items (sk M#...) invoke the publisher; a failure is retried from its record, with a bound, and then
    recorded in UnpublishedEventsQueue."""
    table = RESOURCES["SessionsTable"]["Properties"]
    assert table["StreamSpecification"] == {"StreamViewType": "KEYS_ONLY"}
    event = RESOURCES["PublishMessageEventsFunction"]["Properties"]["Events"]["NewMessages"]
    assert event["Type"] == "DynamoDB"
    props = event["Properties"]
    assert props["Stream"] == {"Fn::GetAtt": ["SessionsTable", "StreamArn"]}
    assert json.loads(props["FilterCriteria"]["Filters"][0]["Pattern"]) == {
        "eventName": ["INSERT"],
        "dynamodb": {"Keys": {"sk": {"S": [{"prefix": "M#"}]}}},
    }
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["MaximumRetryAttempts"] == 10
    assert props["MaximumRecordAgeInSeconds"] == 3600
    assert props["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["UnpublishedEventsQueue", "Arn"]
    }
    env = RESOURCES["PublishMessageEventsFunction"]["Properties"]["Environment"]["Variables"]
    assert env["EVENTS_QUEUE_URL"] == {"Ref": "MessageEventsQueue"}


def test_the_bots_queue_is_fifo_bounded_and_dead_letters_with_an_alarm() -> None:
    queue = RESOURCES["MessageEventsQueue"]["Properties"]
    assert queue["FifoQueue"] is True
    assert queue["DeduplicationScope"] == "messageGroup"
    assert queue["FifoThroughputLimit"] == "perMessageGroupId"
    assert queue["ContentBasedDeduplication"] is False  # the publisher names each event's id
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["MessageEventsDeadLetterQueue", "Arn"]},
        "maxReceiveCount": 3,
    }
    assert RESOURCES["MessageEventsDeadLetterQueue"]["Properties"]["FifoQueue"] is True
    for name in ("MessageEventsQueue", "MessageEventsDeadLetterQueue", "UnpublishedEventsQueue"):
        assert RESOURCES[name]["Properties"]["SqsManagedSseEnabled"] is True, name
    alarms = _alarms()
    for alarm, queue_name in (
        ("MessageEventsDeadLetterAlarm", "MessageEventsDeadLetterQueue"),
        ("UnpublishedEventsAlarm", "UnpublishedEventsQueue"),
    ):
        watched = alarms[alarm]
        assert (watched["Namespace"], watched["MetricName"]) == (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
        )
        assert watched["Dimensions"] == [
            {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_name, "QueueName"]}}
        ]
        assert (watched["Threshold"], watched["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")


def test_a_bot_subscribes_with_the_outputs_and_may_only_receive() -> None:
    outputs = TEMPLATE["Outputs"]
    assert outputs["MessageEventsQueueArn"]["Value"] == {"Fn::GetAtt": ["MessageEventsQueue", "Arn"]}
    assert outputs["EventSubscriberPolicyArn"]["Value"] == {"Ref": "EventSubscriberPolicy"}
    (statement,) = RESOURCES["EventSubscriberPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert sorted(statement["Action"]) == [
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
    ]
    assert statement["Resource"] == {"Fn::GetAtt": ["MessageEventsQueue", "Arn"]}
    # the publisher may read and send, nothing else: no write to the table
    grants = RESOURCES["PublishMessageEventsFunction"]["Properties"]["Policies"][1]["Statement"]
    assert [(g["Action"], g["Resource"]) for g in grants] == [
        (["dynamodb:BatchGetItem"], {"Fn::GetAtt": ["SessionsTable", "Arn"]}),
        (["sqs:SendMessage"], {"Fn::GetAtt": ["MessageEventsQueue", "Arn"]}),
    ]


def test_sam_wires_the_stream_to_its_two_functions_and_the_publishers_failures_to_their_queue() -> None:
    resources = _transformed()["Resources"]
    mappings = {
        r["Properties"]["FunctionName"]["Ref"]: r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
    }
    assert sorted(mappings) == [
        "PublishMessageEventsFunctionAliaslive",
        "RemoveExpiredFilesFunctionAliaslive",
    ]
    for mapping in mappings.values():
        assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["SessionsTable", "StreamArn"]}
    publisher = mappings["PublishMessageEventsFunctionAliaslive"]
    assert publisher["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert publisher["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["UnpublishedEventsQueue", "Arn"]
    }
    assert "DestinationConfig" not in mappings["RemoveExpiredFilesFunctionAliaslive"]


# ---- expired files ----------------------------------------------------------------------------------


def test_only_the_ttls_removals_of_upload_records_wake_the_file_remover_which_may_only_delete_files() -> None:
    """The filter passes a REMOVE made by the TTL process (not the service's own deletes: an erase or a
    retention pass deletes the files itself) of an upload record (sk U#...); a failed batch is retried
    for up to a day. The function may delete files under uploads/, nothing else."""
    event = RESOURCES["RemoveExpiredFilesFunction"]["Properties"]["Events"]["ExpiredUploads"]
    assert event["Type"] == "DynamoDB"
    props = event["Properties"]
    assert props["Stream"] == {"Fn::GetAtt": ["SessionsTable", "StreamArn"]}
    assert json.loads(props["FilterCriteria"]["Filters"][0]["Pattern"]) == {
        "eventName": ["REMOVE"],
        "userIdentity": {"type": ["Service"], "principalId": ["dynamodb.amazonaws.com"]},
        "dynamodb": {"Keys": {"sk": {"S": [{"prefix": "U#"}]}}},
    }
    assert (props["MaximumRetryAttempts"], props["MaximumRecordAgeInSeconds"]) == (10, 86400)
    assert props["BisectBatchOnFunctionError"] is True
    grants = RESOURCES["RemoveExpiredFilesFunction"]["Properties"]["Policies"][1]["Statement"]
    assert [(g["Action"], g["Resource"]) for g in grants] == [
        (["s3:DeleteObject"], {"Fn::Sub": "${UploadsBucket.Arn}/uploads/*"})
    ]


# ---- the streaming API ----------------------------------------------------------------------------


def test_the_streaming_api_keeps_the_http_apis_rules() -> None:
    """The REST API that streams the chat: Regional (an edge-optimized one drops a stream idle 30 s),
    the stage throttling, an access log without IP address, user agent or query string, no execution
    log (bodies), every chat route (and its preflight) streamed to the web-adapter function, and that
    function configured for the adapter; its CORS comes from AllowedOrigins."""
    api = RESOURCES["StreamApi"]["Properties"]
    assert api["EndpointConfiguration"] == {"Type": "REGIONAL"}
    (settings,) = api["MethodSettings"]
    assert settings["ThrottlingRateLimit"] == {"Ref": "ThrottleRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ThrottleBurstLimit"}
    assert settings["LoggingLevel"] == "OFF"
    log_format = api["AccessLogSetting"]["Format"]
    for leak in ("sourceIp", "userAgent", "queryString", "identity"):
        assert leak not in log_format
    fn = RESOURCES["ChatStreamFunction"]["Properties"]
    streamed = {
        (e["Properties"]["Method"], e["Properties"]["Path"])
        for e in fn["Events"].values()
        if e["Type"] == "Api" and e["Properties"].get("ResponseTransferMode") == "RESPONSE_STREAM"
    }
    assert streamed == {
        (method, path)
        for method in ("POST", "OPTIONS")
        for path in ("/api/v1/sessions/{session_id}/chat", "/api/v1/chat")
    }
    assert all(e["Properties"]["RestApiId"] == {"Ref": "StreamApi"} for e in fn["Events"].values())
    variables = fn["Environment"]["Variables"]
    assert variables["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert variables["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert variables["ALLOWED_ORIGINS"] == {"Fn::Join": [",", {"Ref": "AllowedOrigins"}]}
    (adapter,) = fn["Layers"]
    assert "layer:LambdaAdapterLayerArm64:" in adapter["Fn::Sub"]
    outputs = TEMPLATE["Outputs"]["StreamApiUrl"]["Value"]["Fn::Sub"]
    assert outputs.startswith("https://${StreamApi}.execute-api.")
    # the chat function and the streaming one read the same model settings
    chat = RESOURCES["ChatFunction"]["Properties"]["Environment"]["Variables"]
    assert {k: v for k, v in variables.items() if k in chat} == chat


def test_parameter_bounds_are_the_code_s() -> None:
    """A parameter's range is the setting's (chatvault/core/bounds.py), written again in the template
    only because YAML cannot import it: the two are held equal here."""
    from chatvault.core import bounds

    parameters = TEMPLATE["Parameters"]
    assert parameters["MaxUploadBytes"]["MaxValue"] == bounds.UPLOAD_BYTES_MAX
    assert parameters["RetentionHours"]["MaxValue"] == bounds.RETENTION_HOURS_MAX
