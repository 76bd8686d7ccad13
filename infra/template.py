"""template.yaml as the local stack sees it: parameters, conditions and intrinsic functions resolved
with local physical names, so the emulator builds exactly the tables, bucket, routes and environment
that `sam deploy` would."""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
STACK = "chatvault-local"
REGION = "us-east-1"
ACCOUNT = "123456789012"


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, !If, ...) read as their long forms."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    if suffix == "Condition":
        return {"Condition": value}
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _tag)


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as CloudFormation hands it to SAM's transform: AWS::LanguageExtensions applied."""
    return expand(read(path))


def read(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as written (its loops not expanded)."""
    with path.open() as fh:
        return yaml.load(fh, Loader=_CfnLoader)


# ---- AWS::LanguageExtensions ----------------------------------------------------------------------
# The template writes each per-function block (log group, alarms) once, in a `Fn::ForEach` loop over
# the function names. CloudFormation expands the loops (the AWS::LanguageExtensions transform, listed
# before SAM's) before SAM sees the template; the local stack, the admin command and the tests expand
# them here the same way. tests/infrastructure holds this expansion equal to cfn-lint's own, and the
# translated template equal to its recorded resources.

LANGUAGE_EXTENSIONS = "AWS::LanguageExtensions"
_FOR_EACH = "Fn::ForEach::"


def expand(template: dict[str, Any]) -> dict[str, Any]:
    """`Fn::ForEach` loops expanded as the transform does: each item of the collection replaces
    `${Identifier}` and `&{Identifier}` (the item without its non-alphanumeric characters) in the
    fragment's keys and in its `Fn::Sub` strings (a Sub left with no variable becomes that string, so
    `!Ref {Fn::Sub: "${Name}Function"}` names a resource), and `{"Ref": Identifier}` by the item;
    nested loops see the outer item. Plain strings are left as written. The transform's name leaves
    the Transform list, as CloudFormation's does."""
    out = _expand(template, {})
    transforms = out.get("Transform")
    if isinstance(transforms, list) and LANGUAGE_EXTENSIONS in transforms:
        rest = [t for t in transforms if t != LANGUAGE_EXTENSIONS]
        out["Transform"] = rest[0] if len(rest) == 1 else rest
    return out


def _expand(node: Any, items: dict[str, str]) -> Any:
    if isinstance(node, list):
        return [_expand(value, items) for value in node]
    if not isinstance(node, dict):
        return node
    if items and len(node) == 1:
        ((key, value),) = node.items()
        if key == "Ref" and isinstance(value, str) and value in items:
            return items[value]
        if key == "Fn::Sub":
            return _sub(value, items)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if not isinstance(key, str) or not key.startswith(_FOR_EACH):
            out[_replace(key, items) if isinstance(key, str) else key] = _expand(value, items)
            continue
        identifier, collection, fragment = value
        if not isinstance(collection, list):
            raise ValueError(f"{key}: only a literal collection is supported here")
        for item in collection:
            for out_key, out_value in _expand(fragment, {**items, identifier: str(item)}).items():
                if out_key in out:
                    raise ValueError(f"{key}: {out_key} is defined twice")
                out[out_key] = out_value
    return out


def _sub(value: Any, items: dict[str, str]) -> Any:
    if isinstance(value, str):
        text = _replace(value, items)
        return text if "${" not in text.replace("${!", "") else {"Fn::Sub": text}
    text, variables = value
    return {"Fn::Sub": [_replace(text, items), _expand(variables, items)]}


def _replace(text: str, items: dict[str, str]) -> str:
    for identifier, item in items.items():
        bare = re.sub(r"[^A-Za-z0-9]", "", item)
        text = text.replace(f"${{{identifier}}}", item).replace(f"&{{{identifier}}}", bare)
    return text


# What the local stack runs with unless PARAMETER_OVERRIDES says otherwise: the stand-in model (there is
# no Bedrock without an AWS account).
LOCAL_PARAMETERS = {"ModelId": "stand-in"}


def parameter_overrides() -> dict[str, str]:
    """`PARAMETER_OVERRIDES="AuthMode=jwt JwtIssuer=https://..."`, like sam's --parameter-overrides,
    over LOCAL_PARAMETERS."""
    pairs = shlex.split(os.environ.get("PARAMETER_OVERRIDES", ""))
    return {**LOCAL_PARAMETERS, **dict(pair.split("=", 1) for pair in pairs if "=" in pair)}


def state_file() -> Path:
    """Where a running `make dev` writes its addresses (tests give each stack its own)."""
    return Path(os.environ.get("CHATVAULT_DEV_STATE") or ROOT / ".dev-stack.json")


def physical_name(logical_id: str, resource_type: str, *, fifo: bool = False) -> str:
    if resource_type == "AWS::S3::Bucket":
        return f"{STACK}-{logical_id}".lower()
    if fifo:  # CloudFormation ends a FIFO queue's generated name so, as SQS requires
        return f"{STACK}-{logical_id}.fifo"
    return f"{STACK}-{logical_id}"


def queue_url(name: str) -> str:
    """A queue's URL (its Ref): SQS, and the emulator, find the queue by the path's last part."""
    return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"


def run_custom_resource(
    code: str, logical_id: str, resource_type: str, properties: dict[str, Any]
) -> dict[str, Any]:
    """Invoke an inline custom-resource handler with a Create event; its PUT to ResponseURL is caught
    by a one-shot server on loopback. Returns the response's Data (raises if it reported FAILED)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received: dict[str, Any] = {}

    class Catch(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            received.update(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Catch)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    namespace: dict[str, Any] = {}
    exec(compile(code, f"<{logical_id}>", "exec"), namespace)
    namespace["handler"](
        {
            "RequestType": "Create",
            "ResponseURL": f"http://127.0.0.1:{server.server_port}/",
            "StackId": STACK,
            "RequestId": "local",
            "LogicalResourceId": logical_id,
            "ResourceType": resource_type,
            "ResourceProperties": {k: str(v) for k, v in properties.items()},
        },
        None,
    )
    thread.join(timeout=10)
    server.server_close()
    if received.get("Status") != "SUCCESS":
        raise RuntimeError(f"custom resource {logical_id} failed: {received.get('Reason')}")
    data: dict[str, Any] = received.get("Data", {})
    return data


class _Removed:
    """AWS::NoValue."""


NO_VALUE = _Removed()


@dataclass
class Stack:
    template: dict[str, Any]
    parameters: dict[str, Any]
    conditions: dict[str, bool] = field(default_factory=dict)
    _custom: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_template(cls, overrides: dict[str, str] | None = None, path: Path = TEMPLATE) -> Stack:
        template = load(path)
        params: dict[str, Any] = {}
        for name, spec in template.get("Parameters", {}).items():
            value = (overrides or {}).get(name, spec.get("Default"))
            if spec.get("Type") == "CommaDelimitedList" and isinstance(value, str):
                value = [v.strip() for v in value.split(",")]
            params[name] = value
        stack = cls(template, params)
        for name, expr in template.get("Conditions", {}).items():
            stack.conditions[name] = bool(stack.resolve(expr))
        return stack

    # -- intrinsic functions -----------------------------------------------------------------------

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": STACK,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/local",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        resource = self.template["Resources"][name]
        if resource["Type"] == "AWS::SQS::Queue":
            return queue_url(self._queue_name(name))
        return physical_name(name, resource["Type"])

    def _queue_name(self, name: str) -> str:
        fifo = self.resolve(self.template["Resources"][name]["Properties"].get("FifoQueue", False))
        return physical_name(name, "AWS::SQS::Queue", fifo=bool(fifo))

    def get_att(self, name: str, attribute: str) -> Any:
        resource = self.template["Resources"][name]
        physical = physical_name(name, resource["Type"])
        if resource["Type"].startswith("Custom::"):
            return self.custom_resource(name)[attribute]
        if resource["Type"] == "AWS::SQS::Queue":
            queue = self._queue_name(name)
            return {"Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}", "QueueName": queue}.get(
                attribute, queue
            )
        if resource["Type"] == "AWS::DynamoDB::Table" and attribute == "StreamArn":
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{physical}/stream/local"
        if attribute == "Arn":
            kind = resource["Type"]
            if kind == "AWS::DynamoDB::Table":
                return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{physical}"
            if kind == "AWS::S3::Bucket":
                return f"arn:aws:s3:::{physical}"
            return f"arn:aws:local:{REGION}:{ACCOUNT}:{physical}"
        return physical

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self.resolve(v) for v in value) if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition":
                return self.conditions[arg]
            if key == "Fn::GetAtt":
                return self.get_att(*(arg if isinstance(arg, list) else arg.split(".", 1)))
            if key == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.conditions[name] else no)
            if key == "Fn::Equals":
                left, right = (self.resolve(a) for a in arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(a) for a in arg)
            if key == "Fn::Or":
                return any(self.resolve(a) for a in arg)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Join":
                sep, items = arg
                return sep.join(str(i) for i in self.resolve(items))
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                sep, text = arg
                return str(self.resolve(text)).split(sep)
            if key == "Fn::FindInMap":
                mapping, top, second = (self.resolve(a) for a in arg)
                return self.template["Mappings"][mapping][top][second]
        out = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}

    def custom_resource(self, name: str) -> dict[str, Any]:
        """Run an inline (ZipFile) custom-resource handler as CloudFormation would, and return its Data."""
        if name not in self._custom:
            props = self.resolve(self.template["Resources"][name]["Properties"])
            token = self.template["Resources"][name]["Properties"]["ServiceToken"]["Fn::GetAtt"]
            code = self.template["Resources"][token[0]]["Properties"]["Code"]["ZipFile"]
            self._custom[name] = run_custom_resource(
                code, name, self.template["Resources"][name]["Type"], props
            )
        return self._custom[name]

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name:
                resource, attribute = name.split(".", 1)
                return self.get_att(resource, attribute)
            return str(self.ref(name))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)

    # -- what the local stack needs ----------------------------------------------------------------

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {
            name: self.resolve(res.get("Properties", {}))
            for name, res in self.template["Resources"].items()
            if res["Type"] == kind and self.conditions.get(res.get("Condition", ""), True)
        }

    def functions(self) -> dict[str, Function]:
        globals_ = self.template.get("Globals", {}).get("Function", {})
        result = {}
        for name, raw in self.template["Resources"].items():
            if raw["Type"] != "AWS::Serverless::Function":
                continue
            props = raw["Properties"]
            env = {
                **self.resolve(globals_.get("Environment", {}).get("Variables", {})),
                **self.resolve(props.get("Environment", {}).get("Variables", {})),
            }
            events = self.resolve(props.get("Events", {}))
            result[name] = Function(
                name=name,
                code_dir=ROOT / props["CodeUri"],
                handler=props.get("Handler", globals_.get("Handler")),
                timeout=int(props.get("Timeout", globals_.get("Timeout", 3))),
                memory=int(props.get("MemorySize", globals_.get("MemorySize", 128))),
                environment={k: str(v) for k, v in env.items()},
                events=events,
            )
        return result

    def layer_dirs(self) -> list[Path]:
        return [
            ROOT / res["Properties"]["ContentUri"]
            for res in self.template["Resources"].values()
            if res["Type"] == "AWS::Serverless::LayerVersion"
        ]

    def routes(self) -> list[Route]:
        api = next(
            (r for r in self.template["Resources"].values() if r["Type"] == "AWS::Serverless::HttpApi"), None
        )
        body = self.resolve(api["Properties"].get("DefinitionBody", {})) if api else {}
        routes = []
        for fn in self.functions().values():
            for event in fn.events.values():
                if event.get("Type") != "HttpApi":
                    continue
                method = event["Properties"]["Method"].upper()
                path = event["Properties"]["Path"]
                operation = body.get("paths", {}).get(path, {}).get(method.lower(), {})
                schemes = [name for requirement in operation.get("security") or [] for name in requirement]
                routes.append(Route(method, path, fn.name, schemes[0] if schemes else None))
        return routes

    def stream_routes(self) -> list[Route]:
        """The streaming API's routes (REST `Api` events whose integration streams): the gateway sends a
        request there when it asks for `text/event-stream`."""
        routes = []
        for fn in self.functions().values():
            for event in fn.events.values():
                props = event.get("Properties", {})
                if event.get("Type") == "Api" and props.get("ResponseTransferMode") == "RESPONSE_STREAM":
                    routes.append(Route(props["Method"].upper(), props["Path"], fn.name, None, stream=True))
        return routes

    def cors(self) -> dict[str, Any]:
        api = next(
            (r for r in self.template["Resources"].values() if r["Type"] == "AWS::Serverless::HttpApi"), None
        )
        return self.resolve(api["Properties"].get("CorsConfiguration", {})) if api else {}


@dataclass(frozen=True)
class Function:
    name: str
    code_dir: Path
    handler: str
    timeout: int
    memory: int
    environment: dict[str, str]
    events: dict[str, Any]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str
    auth: str | None  # the security scheme of its operation: JwtAuthorizer, AWS_IAM, or none
    stream: bool = False  # the streaming API's (its function answers as it writes: Runtime.stream)

    @property
    def jwt(self) -> bool:
        return self.auth == "JwtAuthorizer"

    @property
    def iam(self) -> bool:
        return self.auth == "AWS_IAM"

    @property
    def pattern(self) -> re.Pattern[str]:
        regex = re.sub(r"\\\{([^}+]+)\\\+\\\}", r"(?P<\1>.+)", re.escape(self.path))
        regex = re.sub(r"\\\{([^}]+)\\\}", r"(?P<\1>[^/]+)", regex)
        return re.compile(f"^{regex}$")

    @property
    def priority(self) -> tuple[int, int, int]:
        """API Gateway's order: static paths, then fewer variables, greedy last, exact method before ANY."""
        greedy = int("+}" in self.path)
        variables = self.path.count("{")
        return (greedy, variables, int(self.method == "ANY"))


if __name__ == "__main__":
    # `python -m infra.template`: the expanded template as JSON, for tools that do not read the loops
    # (checkov: make checkov)
    import json
    import sys

    json.dump(load(), sys.stdout, indent=1)
