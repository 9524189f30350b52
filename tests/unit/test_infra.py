"""The CloudFormation stack grants each service's task role exactly the IAM permissions its code declares
(nothing broader), and declares the same rule, target and roles as producer_config."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bedrock_usage.config import SettingsError, regions
from bedrock_usage.settings import SharedSettings
from bedrockctl.main import parser
from bedrockctl.processes import SERVICES, iam_permissions
from devtools.settings import AllSettings
from producer_config import forwarding, resources
from producer_config.rule import PARTITION_KEY_PATH, RULE_STATE, event_pattern
from provisioning import permissions as provisioning_permissions

TEMPLATE = Path(__file__).parents[2] / "infra" / "cloudformation" / "bedrock-usage-control.yaml"
FORWARDER = TEMPLATE.parent / "region-forwarder.yaml"
HOME_BUS = {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"}
# The stack's ARNs for the placeholders the code declares.
PLACEHOLDERS = {
    "<STREAM_ARN>": {"Fn::GetAtt": ["Stream", "Arn"]},
    "<LEASE_TABLE_ARN>": {"Fn::GetAtt": ["LeaseTable", "Arn"]},
    "<ALERT_SNS_TOPIC_ARN>": {"Ref": "AlertTopic"},
    "<SES_IDENTITY_ARN>": {
        "Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${EmailFrom}"},
    "<APPLICATION_INFERENCE_PROFILES_ARN>": {
        "Fn::Sub": "arn:${AWS::Partition}:bedrock:*:${AWS::AccountId}:application-inference-profile/*"},
}
ROLES = {"consumer": "ConsumerTaskRole", "enforcer": "EnforcerTaskRole", "notifier": "NotifierTaskRole",
         "console": "ConsoleTaskRole"}


class _Loader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms (!Ref, !GetAtt, !Sub…) read as their long forms."""


def _intrinsic(loader: _Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_Loader.add_multi_constructor("!", _intrinsic)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(), Loader=_Loader)


@pytest.fixture(scope="module")
def forwarder() -> dict[str, Any]:
    return yaml.load(FORWARDER.read_text(), Loader=_Loader)


def _normalised(statement: dict[str, Any]) -> tuple[Any, ...]:
    def listed(value: Any) -> list[Any]:
        return value if isinstance(value, list) else [value]

    resources_ = [PLACEHOLDERS.get(r, r) if isinstance(r, str) else r for r in listed(statement["Resource"])]
    return (statement.get("Sid"), tuple(sorted(listed(statement["Action"]))),
            json.dumps(resources_, sort_keys=True), json.dumps(statement.get("Condition"), sort_keys=True))


@pytest.mark.parametrize("service", SERVICES)
def test_each_task_role_grants_exactly_what_the_code_declares(template: dict[str, Any], service: str) -> None:
    role = template["Resources"][ROLES[service]]["Properties"]
    granted = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    assert all(s["Effect"] == "Allow" for s in granted)
    assert sorted(map(_normalised, granted)) == sorted(map(_normalised, iam_permissions(service)))
    assert "ManagedPolicyArns" not in role  # nothing else rides along


def test_the_enforcer_may_attach_only_the_products_policies(template: dict[str, Any]) -> None:
    statements = template["Resources"]["EnforcerTaskRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    for statement in statements:
        actions = statement["Action"]
        if any(a.startswith(("iam:Attach", "iam:Detach")) for a in actions):
            assert statement["Condition"] == {"ArnLike": {"iam:PolicyARN": [
                "arn:aws:iam::*:policy/bedrock-usage-control/*"]}}
        if any((a.startswith("iam:") and "PolicyVersion" in a) or a == "iam:CreatePolicy" for a in actions):
            assert statement["Resource"] == ["arn:aws:iam::*:policy/bedrock-usage-control/*"]
    assert not any(a in ("iam:PutUserPolicy", "iam:PutRolePolicy", "iam:*", "*")
                   for s in statements for a in s["Action"])


def test_the_rule_is_producer_configs(template: dict[str, Any]) -> None:
    rule = template["Resources"]["Rule"]["Properties"]
    assert rule["State"] == RULE_STATE and rule["EventPattern"] == event_pattern()
    (target,) = rule["Targets"]
    assert target["KinesisParameters"] == {"PartitionKeyPath": PARTITION_KEY_PATH}
    assert target["RetryPolicy"] == resources.RETRY_POLICY and target["Id"] == resources.TARGET_ID
    policy = template["Resources"]["RuleRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    rendered = resources.put_records_policy("<STREAM_ARN>")["Statement"]
    assert [(s["Action"], PLACEHOLDERS["<STREAM_ARN>"]) for s in rendered] == [
        (s["Action"], s["Resource"]) for s in policy]


def test_every_setting_a_task_sets_is_one_its_command_reads(template: dict[str, Any]) -> None:
    tasks = 0
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::ECS::TaskDefinition":
            continue
        for container in resource["Properties"]["ContainerDefinitions"]:
            # The settings class the container's command reads (e.g. `enforcer run` -> EnforcerSettings).
            read: type[SharedSettings] = parser().parse_args(container["Command"]).settings_type
            known = {s.name for s in read.specs()}
            used = {e["Name"] for e in container.get("Environment", [])} | {
                s["Name"] for s in container.get("Secrets", [])}
            assert used <= known, (name, sorted(used - known))
            tasks += 1
    assert tasks == 5


def test_the_image_holds_every_package_and_the_migrations() -> None:
    dockerfile = (TEMPLATE.parents[2] / "Dockerfile").read_text()
    for package in ("bedrockctl", "bedrock_usage", "consumer", "enforcement", "notifier", "producer_config"):
        assert f"COPY {package} ./{package}" in dockerfile, package
    assert "--require-hashes -r requirements/kcl.txt" in dockerfile and "openjdk-17-jre-headless" in dockerfile
    assert "COPY sql /usr/local/lib/python3.11/site-packages/sql" in dockerfile


def test_the_image_holds_the_console_and_its_scripts_from_the_lockfile() -> None:
    dockerfile = (TEMPLATE.parents[2] / "Dockerfile").read_text()
    assert "COPY console ./console" in dockerfile
    # The scripts come from npm at build time, exactly as the lockfile pins them, with no install scripts run.
    assert "COPY console/web/package.json console/web/package-lock.json ./" in dockerfile
    assert "RUN npm ci --ignore-scripts" in dockerfile
    for package in ("htmx.org", "chart.js"):
        target = f"/usr/local/lib/python3.11/site-packages/console/web/node_modules/{package}/dist"
        assert f"COPY --from=web /web/node_modules/{package}/dist {target}" in dockerfile, package
    assert re.search(r"^EXPOSE .*\b8080\b", dockerfile, re.MULTILINE)


def test_the_local_stack_runs_every_service_and_prometheus_scrapes_them() -> None:
    root = TEMPLATE.parents[2]
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())["services"]
    assert {"redis", "mysql", "moto", "consumer", "enforcer", "notifier", "console", "prometheus",
            "grafana"} <= set(compose)
    defaults = {s.name: s.default for s in AllSettings.specs()}
    scrape = yaml.safe_load((root / "infra" / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]
    targets = {t for job in scrape for c in job["static_configs"] for t in c["targets"]}
    assert targets == {f"consumer:{defaults['METRICS_PORT']}", f"enforcer:{defaults['ENFORCER_METRICS_PORT']}",
                       f"notifier:{defaults['NOTIFIER_METRICS_PORT']}", f"console:{defaults['CONSOLE_PORT']}"}
    for service in ("consumer", "enforcer", "notifier"):
        assert compose[service]["command"] == [service, "run"]


def test_the_example_parameters_are_the_stacks(template: dict[str, Any]) -> None:
    example = json.loads((TEMPLATE.parent / "parameters.example.json").read_text())
    assert {p["ParameterKey"] for p in example} <= set(template["Parameters"])
    required = {name for name, spec in template["Parameters"].items() if "Default" not in spec}
    assert required <= {p["ParameterKey"] for p in example}


def test_the_forwarding_role_may_only_put_events_on_the_home_default_bus(template: dict[str, Any]) -> None:
    role = template["Resources"]["ForwardingRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"] == resources.trust_policy("events.amazonaws.com")
    (policy,) = role["Policies"]
    rendered = forwarding.put_events_policy("<HOME_BUS_ARN>")["Statement"]
    assert policy["PolicyDocument"]["Statement"] == [{**s, "Resource": HOME_BUS} for s in rendered]
    assert rendered == [{"Effect": "Allow", "Action": ["events:PutEvents"], "Resource": "<HOME_BUS_ARN>"}]
    assert "ManagedPolicyArns" not in role
    outputs = template["Outputs"]
    assert outputs["HomeEventBusArn"]["Value"] == HOME_BUS
    assert outputs["ForwardingRoleArn"]["Value"] == {"Fn::GetAtt": ["ForwardingRole", "Arn"]}


def test_the_forwarder_stack_is_producer_configs_forwarding_rule(forwarder: dict[str, Any]) -> None:
    resources_ = forwarder["Resources"]
    rule = resources_["Rule"]["Properties"]
    assert rule["State"] == RULE_STATE and rule["EventPattern"] == event_pattern()
    (target,) = rule["Targets"]
    assert target == {**forwarding.forward_target("<BUS>", "<ROLE>", "<DLQ>"),
                      "Arn": {"Ref": "HomeEventBusArn"}, "RoleArn": {"Ref": "ForwardingRoleArn"},
                      "DeadLetterConfig": {"Arn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}}}
    (statement,) = resources_["DeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement == resources.dlq_policy({"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
                                             {"Fn::GetAtt": ["Rule", "Arn"]})["Statement"][0]
    queue = resources_["DeadLetterQueue"]["Properties"]
    assert queue == {"MessageRetentionPeriod": 1209600, "SqsManagedSseEnabled": True}
    # Nothing in the forwarder stack needs IAM: the role is the main stack's.
    assert {r["Type"] for r in resources_.values()} == {"AWS::SQS::Queue", "AWS::SQS::QueuePolicy", "AWS::Events::Rule"}


@pytest.mark.parametrize(("value", "valid"), [
    ("", True), ("eu-west-1", True), ("eu-west-1,us-west-2", True), ("eu-west-1, us-gov-west-1", True),
    ("Europe", False), ("eu-west", False), ("EU-WEST-1", False), ("eu-west-1,eu-west-1a", False)])
def test_the_stacks_source_regions_are_what_the_setting_accepts(template: dict[str, Any], value: str,
                                                                 valid: bool) -> None:
    assert bool(re.fullmatch(template["Parameters"]["SourceRegions"]["AllowedPattern"], value)) is valid
    try:
        regions(value)
    except SettingsError:
        assert not valid
    else:
        assert valid


def test_the_stacks_redis_never_evicts_and_can_be_a_cluster(template: dict[str, Any]) -> None:
    # An evicting policy (ElastiCache's default volatile-lru) would silently drop counters: all have a TTL.
    resources_ = template["Resources"]
    cache = resources_["Cache"]["Properties"]
    group = resources_["CacheParameterGroup"]
    assert cache["CacheParameterGroupName"] == {"Ref": "CacheParameterGroup"}
    assert group["Properties"]["Properties"]["maxmemory-policy"] == "noeviction"
    assert group["Properties"]["CacheParameterGroupFamily"] == f"redis{cache['EngineVersion'].split('.')[0]}"
    # Cluster mode: shards and replicas per shard with cluster-enabled, else one primary and a replica.
    assert group["Properties"]["Properties"]["cluster-enabled"] == {"Fn::If": ["RedisCluster", "yes", "no"]}
    assert cache["NumNodeGroups"] == {"Fn::If": ["RedisCluster", {"Ref": "RedisShards"}, {"Ref": "AWS::NoValue"}]}
    assert cache["NumCacheClusters"] == {"Fn::If": ["RedisCluster", {"Ref": "AWS::NoValue"}, 2]}
    # Each task reaches a cluster through its configuration endpoint (a cluster has no primary endpoint).
    for name in ("ConsumerTaskDefinition", "EnforcerTaskDefinition", "NotifierTaskDefinition"):
        (container,) = resources_[name]["Properties"]["ContainerDefinitions"]
        (url,) = [e["Value"] for e in container["Environment"] if e["Name"] == "REDIS_URL"]
        on_cluster = url["Fn::If"][1]["Fn::If"]
        assert on_cluster[0] == "RedisCluster" and "ConfigurationEndPoint" in on_cluster[1]["Fn::Sub"]
    # …and is told it is one (REDIS_CLUSTER): every task, the migration's too (it can rebuild counters).
    for name in ("ConsumerTaskDefinition", "EnforcerTaskDefinition", "NotifierTaskDefinition",
                 "MigrateTaskDefinition"):
        (container,) = resources_[name]["Properties"]["ContainerDefinitions"]
        (flag,) = [e["Value"] for e in container["Environment"] if e["Name"] == "REDIS_CLUSTER"]
        assert flag == {"Fn::If": ["RedisCluster", "true", "false"]}


def _environment(template: dict[str, Any], task: str) -> dict[str, Any]:
    (container,) = template["Resources"][task]["Properties"]["ContainerDefinitions"]
    return {e["Name"]: e["Value"] for e in container["Environment"]}


def test_the_console_blocks_with_the_enforcers_settings(template: dict[str, Any]) -> None:
    """A block from the console is the enforcer's: same mode, protected principals, stores, prefix."""
    enforcer, console = _environment(template, "EnforcerTaskDefinition"), _environment(template,
                                                                                      "ConsoleTaskDefinition")
    shared = {name: value for name, value in enforcer.items() if name != "ENFORCER_METRICS_PORT"}
    assert {name: console.get(name) for name in shared} == shared
    (container,) = template["Resources"]["ConsoleTaskDefinition"]["Properties"]["ContainerDefinitions"]
    (enforcer_container,) = template["Resources"]["EnforcerTaskDefinition"]["Properties"]["ContainerDefinitions"]
    assert container["Secrets"] == enforcer_container["Secrets"]
    assert container["Command"] == ["console", "run"]
    assert {name: console[name] for name in ("CONSOLE_HOST", "CONSOLE_PORT", "CONSOLE_AUTH", "CONSOLE_ALB_ARN")} == {
        "CONSOLE_HOST": "0.0.0.0", "CONSOLE_PORT": "8080", "CONSOLE_AUTH": "alb",
        "CONSOLE_ALB_ARN": {"Ref": "ConsoleLoadBalancer"}}  # Ref of a load balancer is its ARN: the signer
    assert (console["CONSOLE_ADMINS"], console["CONSOLE_ADMIN_GROUPS"]) == (
        {"Ref": "ConsoleAdmins"}, {"Ref": "ConsoleAdminGroups"})


def test_the_console_reaches_each_services_health_by_its_private_name(template: dict[str, Any]) -> None:
    resources_ = template["Resources"]
    namespace = resources_["ServiceNamespace"]["Properties"]["Name"]["Fn::Sub"]
    urls = _environment(template, "ConsoleTaskDefinition")["CONSOLE_SERVICE_URLS"]["Fn::Sub"]
    named = dict(item.split("=", 1) for item in urls.split(","))
    assert set(named) == set(SERVICES) - {"console"}
    ports = {"consumer": "METRICS_PORT", "enforcer": "ENFORCER_METRICS_PORT", "notifier": "NOTIFIER_METRICS_PORT"}
    for service, url in named.items():
        title = service.title()
        discovery = resources_[f"{title}Discovery"]["Properties"]
        assert discovery["Name"] == service and discovery["NamespaceId"] == {"Ref": "ServiceNamespace"}
        # The port the service's task listens on for /health and /metrics.
        port = _environment(template, f"{title}TaskDefinition")[ports[service]]
        assert url == f"http://{service}.{namespace}:{port}", service
        (registry,) = resources_[f"{title}Service"]["Properties"]["ServiceRegistries"]
        assert registry["RegistryArn"]["Fn::Sub"].endswith(f":service/${{{title}Discovery}}")


def test_the_console_load_balancer_is_internal_and_signs_people_in_first(template: dict[str, Any]) -> None:
    parameters, resources_ = template["Parameters"], template["Resources"]
    assert parameters["ConsoleLoadBalancerScheme"]["Default"] == "internal"
    balancer = resources_["ConsoleLoadBalancer"]["Properties"]
    assert balancer["Scheme"] == {"Ref": "ConsoleLoadBalancerScheme"} and balancer["Type"] == "application"
    listener = resources_["ConsoleListener"]["Properties"]
    assert (listener["Protocol"], listener["Port"]) == ("HTTPS", 443)
    assert listener["Certificates"] == [{"CertificateArn": {"Ref": "ConsoleCertificateArn"}}]
    # Listener rules and default actions run by Order: signed in first, then forwarded.
    sign_in, forward = sorted(listener["DefaultActions"], key=lambda action: action["Order"])
    assert sign_in["Type"] == "authenticate-oidc" and forward["Type"] == "forward"
    assert forward["TargetGroupArn"] == {"Ref": "ConsoleTargetGroup"}
    oidc = sign_in["AuthenticateOidcConfig"]
    settings = ("Issuer", "AuthorizationEndpoint", "TokenEndpoint", "UserInfoEndpoint", "ClientId")
    assert {key: oidc[key] for key in settings} == {key: {"Ref": f"ConsoleOidc{key}"} for key in settings}
    assert oidc["OnUnauthenticatedRequest"] == "authenticate"
    # The client secret: a Secrets Manager dynamic reference, resolved by CloudFormation; no parameter holds it.
    assert oidc["ClientSecret"] == {
        "Fn::Sub": "{{resolve:secretsmanager:${ConsoleOidcClientSecretArn}:SecretString}}"}
    assert [name for name in parameters if "secret" in name.lower() and "Console" in name] == [
        "ConsoleOidcClientSecretArn"]
    assert re.fullmatch(parameters["ConsoleOidcClientSecretArn"]["AllowedPattern"],
                        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:console-oidc-AbCdEf")
    assert not re.fullmatch(parameters["ConsoleOidcClientSecretArn"]["AllowedPattern"], "hunter2")
    target = resources_["ConsoleTargetGroup"]["Properties"]
    assert (target["Port"], target["HealthCheckPath"], target["TargetType"]) == (8080, "/health", "ip")
    service = resources_["ConsoleService"]["Properties"]
    assert service["LoadBalancers"] == [{"ContainerName": "console", "ContainerPort": 8080,
                                         "TargetGroupArn": {"Ref": "ConsoleTargetGroup"}}]


def _rules(template: dict[str, Any], group: str, direction: str) -> list[dict[str, Any]]:
    """Every ingress or egress rule of a security group: inline, and the separate rule resources."""
    resources_ = template["Resources"]
    inline = "SecurityGroupIngress" if direction == "in" else "SecurityGroupEgress"
    kind = "AWS::EC2::SecurityGroupIngress" if direction == "in" else "AWS::EC2::SecurityGroupEgress"
    rules = list(resources_[group]["Properties"].get(inline, []))
    rules += [r["Properties"] for r in resources_.values()
              if r["Type"] == kind and r["Properties"]["GroupId"] == {"Ref": group}]
    return [{k: v for k, v in rule.items() if k not in ("GroupId", "Description")} for rule in rules]


def test_the_console_is_open_to_its_load_balancer_only(template: dict[str, Any]) -> None:
    balancer, console = "ConsoleLoadBalancerSecurityGroup", "ConsoleSecurityGroup"
    assert _rules(template, console, "in") == [
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "SourceSecurityGroupId": {"Ref": balancer}}]
    assert _rules(template, balancer, "in") == [
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": {"Ref": "ConsoleIngressCidr"}}]
    # The load balancer talks to the IdP (HTTPS) and to the console; nothing else.
    assert sorted(map(json.dumps, _rules(template, balancer, "out"))) == sorted(map(json.dumps, [
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0"},
        {"DestinationSecurityGroupId": {"Ref": console}, "IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080}]))
    # The console: HTTPS (AWS APIs, the ALB's public keys), MySQL, Redis, the services' /health; nothing else.
    egress = {(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in _rules(template, console, "out")}
    assert egress == {("tcp", 443, 443), ("tcp", 3306, 3306), ("tcp", 6379, 6379), ("tcp", 9101, 9103)}
    # …and the services, the database and the cache let it in on those ports.
    for group, port in (("ServiceSecurityGroup", 9101), ("DatabaseSecurityGroup", 3306), ("CacheSecurityGroup", 6379)):
        assert {"IpProtocol": "tcp", "FromPort": port, "ToPort": port + 2 * (port == 9101),
                "SourceSecurityGroupId": {"Ref": console}} in _rules(template, group, "in"), group


def test_the_console_needs_its_sign_in_and_the_example_gives_it(template: dict[str, Any]) -> None:
    """Console=true (the default) is refused without the sign-in parameters; the example file has them all."""
    (rule,) = template["Rules"].values()
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "Console"}, "true"]}
    required = {a["Assert"]["Fn::Not"][0]["Fn::Equals"][0]["Ref"] for a in rule["Assertions"]}
    assert {"ConsoleCertificateArn", "ConsoleIngressCidr", "ConsoleOidcIssuer", "ConsoleOidcClientId",
            "ConsoleOidcClientSecretArn", "ConsoleOidcUserInfoEndpoint"} <= required
    example = {p["ParameterKey"]: p["ParameterValue"] for p in json.loads(
        (TEMPLATE.parent / "parameters.example.json").read_text())}
    assert example.get("Console", template["Parameters"]["Console"]["Default"]) == "true"
    assert all(example.get(name) for name in required), sorted(n for n in required if not example.get(n))
    for name in required:
        pattern = template["Parameters"][name].get("AllowedPattern")
        assert pattern is None or re.fullmatch(pattern, example[name]), name


def test_the_provisioning_role_grants_exactly_what_provisioning_declares(template: dict[str, Any]) -> None:
    role = template["Resources"]["ProvisioningRole"]["Properties"]
    granted = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    assert all(s["Effect"] == "Allow" for s in granted)
    assert sorted(map(_normalised, granted)) == sorted(map(_normalised, provisioning_permissions.IAM_PERMISSIONS))
    assert "ManagedPolicyArns" not in role
    assert template["Outputs"]["ProvisioningRoleArn"]["Value"] == {"Fn::GetAtt": ["ProvisioningRole", "Arn"]}


def test_the_provisioning_role_is_assumed_by_the_listed_admins_or_with_mfa_only(template: dict[str, Any]) -> None:
    (statement,) = template["Resources"]["ProvisioningRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    condition, listed, default = statement["Fn::If"]
    assert condition == "HasProvisioningAdmins" and template["Parameters"]["ProvisioningAdmins"]["Default"] == ""
    assert listed == {"Effect": "Allow", "Principal": {"AWS": {"Ref": "ProvisioningAdmins"}},
                      "Action": "sts:AssumeRole"}
    # No admin listed: the account's own principals (those whose policy allows it), never anyone else's.
    assert default == {"Effect": "Allow", "Action": "sts:AssumeRole",
                       "Principal": {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}},
                       "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}


def _overlap(one: str, other: str) -> bool:
    """Whether two IAM globs (actions or ARNs) can match a same name."""
    one, other = one.lower(), other.lower()
    return fnmatch.fnmatchcase(one, other) or fnmatch.fnmatchcase(other, one)


def test_no_other_role_of_the_stack_may_do_any_of_provisionings_iam(template: dict[str, Any]) -> None:
    """Creating, changing and deleting users, groups, policies and tags on the provisioning path: the provisioning
    role's alone (not the task roles' nor the execution, rule or forwarding roles'). Reads are shared (the
    consumer reads people's tags); the enforcer versions policies on its own path only."""
    theirs = [(action, resource) for s in provisioning_permissions.IAM_PERMISSIONS for action in s["Action"]
              if not action.startswith(("iam:Get", "iam:List", "sts:")) for resource in s["Resource"]]
    assert {"iam:CreateUser", "iam:CreateGroup", "iam:CreatePolicy", "iam:TagUser"} <= {a for a, _ in theirs}
    team_policies = {r for a, r in theirs if a == "iam:CreatePolicy"}
    roles = {name: r["Properties"] for name, r in template["Resources"].items()
             if r["Type"] == "AWS::IAM::Role" and name != "ProvisioningRole"}
    assert set(ROLES.values()) <= set(roles)
    policies = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
    assert not [r for r in template["Resources"].values() if r["Type"] in policies]
    for name, role in roles.items():
        assert all("iam" not in arn.lower() for arn in role.get("ManagedPolicyArns", [])
                   if isinstance(arn, str)), name
        for policy in role.get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                resources_ = statement["Resource"] if isinstance(statement["Resource"], list) else [
                    statement["Resource"]]
                # Attaching and detaching only the enforcer's deny policies (a condition on the policy) is not
                # provisioning's: a team's allow policy is never among them.
                limited = statement.get("Condition", {}).get("ArnLike", {}).get("iam:PolicyARN")
                if limited and not any(_overlap(arn, team) for arn in limited for team in team_policies):
                    continue
                clash = [(action, resource) for action, resource in theirs for granted in actions
                         if _overlap(action, granted) for mine in resources_
                         if not isinstance(mine, str) or _overlap(resource, mine)]
                assert not clash, (name, statement.get("Sid"), clash[:3])
