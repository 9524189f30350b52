"""`make deploy` against moto (server mode, through the AWS CLI): the change set is shown, then the stack
creates what moto supports — the stream, the rule and its target, the roles, the lease table, the ECS
cluster and services, the alert topic, the log group, the console's load balancer, listener and target
group (the template goes through S3: it is past CloudFormation's inline limit) — and a forwarder stack in
each other region of SourceRegions (deleted when the region leaves the list). The data stores are given as
existing ones here (moto's CloudFormation does not create RDS secrets or ElastiCache)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.moto_server import MotoServer
from producer_config import forwarding
from producer_config.rule import PARTITION_KEY_PATH, RULE_STATE, event_pattern
from provisioning import permissions as provisioning_permissions

REPO = Path(__file__).parents[2]
STACK = "bedrock-usage-test"
IDP = "https://idp.example.com"
CLIENT_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:console-oidc-AbCdEf"
CONSOLE = {"CFN_ConsoleDomainName": "usage.example.com", "CFN_ConsoleIngressCidr": "10.0.0.0/8",
           "CFN_ConsoleOidcIssuer": IDP, "CFN_ConsoleOidcAuthorizationEndpoint": f"{IDP}/oauth2/authorize",
           "CFN_ConsoleOidcTokenEndpoint": f"{IDP}/oauth2/token",
           "CFN_ConsoleOidcUserInfoEndpoint": f"{IDP}/oauth2/userInfo",
           "CFN_ConsoleOidcClientId": "console-client", "CFN_ConsoleOidcClientSecretArn": CLIENT_SECRET_ARN,
           "CFN_ConsoleAdmins": "finops@example.com", "CFN_ConsoleAdminGroups": "0a1b2c3d-admins",
           # Given although they are the defaults: on an update, moto's CloudFormation takes every parameter the
           # create did not name for changed, and "updates" the load balancer by dropping it (it cannot update one).
           "CFN_ConsoleLoadBalancerScheme": "internal", "CFN_ConsoleSubnetIds": "", "CFN_ProvisioningAdmins": ""}


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(log_path=tmp_path_factory.mktemp("moto") / "moto.log").start()
    try:
        yield server
    finally:
        server.stop()


def _certificate(moto: MotoServer) -> str:
    """The console listener's certificate (moto's load balancer wants it to exist in ACM)."""
    acm = moto.client("acm")
    for summary in acm.list_certificates()["CertificateSummaryList"]:
        if summary["DomainName"] == CONSOLE["CFN_ConsoleDomainName"]:
            return str(summary["CertificateArn"])
    return str(acm.request_certificate(DomainName=CONSOLE["CFN_ConsoleDomainName"])["CertificateArn"])


def _deploy(moto: MotoServer, ec2: Any, stack: str = STACK, **more: str) -> subprocess.CompletedProcess[str]:
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"] if s["VpcId"] == vpc][:2]
    # The main template is past CloudFormation's inline limit: make deploy sends it through S3, and the CLI hands
    # moto a template URL on the endpoint, which moto reads as path-style only when the host is "localhost".
    endpoint = {"AWS_ENDPOINT_URL": moto.url.replace("127.0.0.1", "localhost")}
    env = {**os.environ, **moto.env(), **endpoint, "STACK_NAME": stack, "DEPLOY_YES": "1",
           "DEPLOY_PARAMS": "/nonexistent",
           "CFN_VpcId": vpc, "CFN_PrivateSubnetIds": ",".join(subnets), "CFN_EmailFrom": "bedrock-usage@example.com",
           "CFN_ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/bedrock-usage-control:test",
           "CFN_ExistingRedisUrl": "rediss://redis.internal:6379/0", "CFN_ExistingMysqlEndpoint": "mysql.internal:3306",
           "CFN_ExistingMysqlSecretName": "bedrock-usage-db", "CFN_EnforcementMode": "shadow", **CONSOLE,
           "CFN_ConsoleCertificateArn": _certificate(moto), **more}
    return subprocess.run(["make", "-s", "deploy"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
                          check=False)


@pytest.fixture(scope="module")
def created(moto: MotoServer) -> subprocess.CompletedProcess[str]:
    """The first `make deploy` of the stack: it creates it (later ones update it)."""
    return _deploy(moto, moto.client("ec2"))


def test_make_deploy_shows_the_change_set_then_creates_the_stack(moto: MotoServer,
                                                                  created: subprocess.CompletedProcess[str]) -> None:
    run = created
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "what will change" in run.stdout and "AWS::Events::Rule" in run.stdout and "== deployed" in run.stdout

    stack = moto.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    # The template went through a private bucket of make deploy's (it is past the inline limit).
    s3 = moto.client("s3")
    bucket = "bedrock-usage-control-templates-123456789012-us-east-1"
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
    assert s3.list_objects_v2(Bucket=bucket, Prefix=f"{STACK}/")["KeyCount"] >= 1
    resources = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in moto.client("cloudformation")
                 .list_stack_resources(StackName=STACK)["StackResourceSummaries"] if r["LogicalResourceId"]}

    kinesis = moto.client("kinesis")
    stream = kinesis.describe_stream_summary(StreamName=resources["Stream"])["StreamDescriptionSummary"]
    events = moto.client("events")
    rule = events.describe_rule(Name=resources["Rule"].split("/")[-1].split("|")[-1])
    assert rule["State"] == RULE_STATE
    (target,) = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"] == stream["StreamARN"]
    assert target["KinesisParameters"]["PartitionKeyPath"] == PARTITION_KEY_PATH

    iam = moto.client("iam")
    enforcer_role = resources["EnforcerTaskRole"]
    (policy_name,) = iam.list_role_policies(RoleName=enforcer_role)["PolicyNames"]
    document = iam.get_role_policy(RoleName=enforcer_role, PolicyName=policy_name)["PolicyDocument"]
    if isinstance(document, str):  # moto's CloudFormation keeps the document as Python's repr of it
        document = json.loads(document) if document.startswith('{"') else ast.literal_eval(document)
    statements = document["Statement"]
    assert {s["Sid"] for s in statements} == {"OwnPolicies", "AttachOnlyOwnPolicies", "ReadRoleAttachments", "WhoAmI"}
    # The admins' provisioning role: provisioning's permissions, assumed by the account's principals with MFA.
    provisioning = resources["ProvisioningRole"]
    role = iam.get_role(RoleName=provisioning)["Role"]
    trust = role["AssumeRolePolicyDocument"]
    (trusted,) = (json.loads(trust) if isinstance(trust, str) else trust)["Statement"]
    assert trusted["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert trusted["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    (policy_name,) = iam.list_role_policies(RoleName=provisioning)["PolicyNames"]
    document = iam.get_role_policy(RoleName=provisioning, PolicyName=policy_name)["PolicyDocument"]
    if isinstance(document, str):
        document = json.loads(document) if document.startswith('{"') else ast.literal_eval(document)
    assert {s["Sid"] for s in document["Statement"]} == {s["Sid"] for s in provisioning_permissions.IAM_PERMISSIONS}

    ecs = moto.client("ecs")
    services = ecs.list_services(cluster=resources["Cluster"])["serviceArns"]
    assert sorted(s.rsplit("/", 1)[-1] for s in services) == ["console", "consumer", "enforcer", "notifier"]
    definition = ecs.describe_task_definition(taskDefinition=resources["EnforcerTaskDefinition"])["taskDefinition"]
    (container,) = definition["containerDefinitions"]
    environment = {e["name"]: e["value"] for e in container["environment"]}
    assert container["command"] == ["enforcer", "run"] and environment["ENFORCEMENT_MODE"] == "shadow"
    assert environment["REDIS_URL"] == "rediss://redis.internal:6379/0" and environment["REDIS_CLUSTER"] == "false"
    assert moto.client("dynamodb").describe_table(TableName=f"{STACK}-consumer")["Table"]["TableStatus"] == "ACTIVE"
    assert any(t["TopicArn"] == resources["AlertTopic"] for t in moto.client("sns").list_topics()["Topics"])
    assert moto.client("logs").describe_log_groups(logGroupNamePrefix=f"/ecs/{STACK}")["logGroups"]


def test_make_deploy_puts_the_console_behind_a_load_balancer_that_signs_people_in(
        moto: MotoServer, created: subprocess.CompletedProcess[str]) -> None:
    """What moto's CloudFormation creates of the console: the internal ALB, its HTTPS listener whose first action
    is authenticate-oidc, the target group, the service and its task, its role, its security groups' ingress.
    moto does not resolve the client secret's dynamic reference (AWS does, at deploy time), and keeps no egress
    rule, service registry or load-balancer attachment of a service: tests/unit/test_infra.py checks those."""
    assert created.returncode == 0, created.stdout[-2000:] + created.stderr[-2000:]
    resources = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in moto.client("cloudformation")
                 .list_stack_resources(StackName=STACK)["StackResourceSummaries"] if r["LogicalResourceId"]}
    elbv2 = moto.client("elbv2")
    (balancer,) = elbv2.describe_load_balancers(LoadBalancerArns=[resources["ConsoleLoadBalancer"]])["LoadBalancers"]
    assert (balancer["Type"], balancer["Scheme"]) == ("application", "internal")
    assert balancer["SecurityGroups"] == [resources["ConsoleLoadBalancerSecurityGroup"]]
    (listener,) = elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"]
    assert (listener["Protocol"], listener["Port"]) == ("HTTPS", 443)
    assert listener["Certificates"] == [{"CertificateArn": _certificate(moto)}]
    sign_in, forward = listener["DefaultActions"]
    assert (sign_in["Type"], sign_in["Order"]) == ("authenticate-oidc", 1)
    oidc = sign_in["AuthenticateOidcConfig"]
    assert (oidc["Issuer"], oidc["ClientId"], oidc["UserInfoEndpoint"], oidc["OnUnauthenticatedRequest"]) == (
        IDP, "console-client", f"{IDP}/oauth2/userInfo", "authenticate")
    assert oidc["ClientSecret"] == f"{{{{resolve:secretsmanager:{CLIENT_SECRET_ARN}:SecretString}}}}"
    assert (forward["Type"], forward["TargetGroupArn"]) == ("forward", resources["ConsoleTargetGroup"])
    (target,) = elbv2.describe_target_groups(TargetGroupArns=[resources["ConsoleTargetGroup"]])["TargetGroups"]
    assert (target["Port"], target["HealthCheckPath"], target["TargetType"]) == (8080, "/health", "ip")

    ecs = moto.client("ecs")
    definition = ecs.describe_task_definition(taskDefinition=resources["ConsoleTaskDefinition"])["taskDefinition"]
    (container,) = definition["containerDefinitions"]
    environment = {e["name"]: e["value"] for e in container["environment"]}
    assert container["command"] == ["console", "run"]
    assert (environment["CONSOLE_AUTH"], environment["CONSOLE_ALB_ARN"], environment["CONSOLE_PORT"]) == (
        "alb", balancer["LoadBalancerArn"], "8080")
    assert environment["CONSOLE_SERVICE_URLS"] == (
        f"consumer=http://consumer.{STACK}.internal:9101,enforcer=http://enforcer.{STACK}.internal:9102,"
        f"notifier=http://notifier.{STACK}.internal:9103")
    assert (environment["ENFORCEMENT_MODE"], environment["CONSOLE_ADMINS"]) == ("shadow", "finops@example.com")

    iam = moto.client("iam")
    (policy_name,) = iam.list_role_policies(RoleName=resources["ConsoleTaskRole"])["PolicyNames"]
    document = iam.get_role_policy(RoleName=resources["ConsoleTaskRole"], PolicyName=policy_name)["PolicyDocument"]
    if isinstance(document, str):
        document = json.loads(document) if document.startswith('{"') else ast.literal_eval(document)
    assert {s["Sid"] for s in document["Statement"]} == {"OwnPolicies", "AttachOnlyOwnPolicies",
                                                         "ReadRoleAttachments", "WhoAmI"}

    ec2 = moto.client("ec2")
    (console_group,) = ec2.describe_security_groups(GroupIds=[resources["ConsoleSecurityGroup"]])["SecurityGroups"]
    assert [(p["IpProtocol"], p["FromPort"], p["ToPort"], [g["GroupId"] for g in p["UserIdGroupPairs"]], p["IpRanges"])
            for p in console_group["IpPermissions"]] == [
        ("tcp", 8080, 8080, [resources["ConsoleLoadBalancerSecurityGroup"]], [])]
    (balancer_group,) = ec2.describe_security_groups(
        GroupIds=[resources["ConsoleLoadBalancerSecurityGroup"]])["SecurityGroups"]
    assert [(p["FromPort"], p["IpRanges"]) for p in balancer_group["IpPermissions"]] == [
        (443, [{"CidrIp": CONSOLE["CFN_ConsoleIngressCidr"]}])]


def _forwarder_rule(moto: MotoServer, region: str) -> str:
    """The name of the rule of the forwarder stack in `region`."""
    cloudformation = moto.client("cloudformation", region)
    (stack,) = cloudformation.describe_stacks(StackName=f"{STACK}-forwarder")["Stacks"]
    assert stack["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    (rule,) = [r["PhysicalResourceId"] for r in cloudformation.list_stack_resources(
        StackName=f"{STACK}-forwarder")["StackResourceSummaries"] if r["LogicalResourceId"] == "Rule"]
    return str(rule).split("/")[-1].split("|")[-1]


def test_make_deploy_forwards_each_source_region_to_the_home_bus(moto: MotoServer) -> None:
    ec2 = moto.client("ec2")
    run = _deploy(moto, ec2, CFN_SourceRegions="us-east-1, us-west-2,eu-west-1")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "== us-east-1: the stack's own region" in run.stdout
    home_bus = "arn:aws:events:us-east-1:123456789012:event-bus/default"
    (role,) = [r["PhysicalResourceId"] for r in moto.client("cloudformation").list_stack_resources(
        StackName=STACK)["StackResourceSummaries"] if r["LogicalResourceId"] == "ForwardingRole"]
    iam = moto.client("iam")
    role_arn = iam.get_role(RoleName=role)["Role"]["Arn"]

    for region in ("us-west-2", "eu-west-1"):
        assert f"== deployed {STACK}-forwarder in {region}" in run.stdout
        events = moto.client("events", region)
        rule = events.describe_rule(Name=_forwarder_rule(moto, region))
        assert rule["State"] == RULE_STATE and json.loads(rule["EventPattern"]) == event_pattern()
        (target,) = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
        assert (target["Id"], target["Arn"], target["RoleArn"]) == (forwarding.TARGET_ID, home_bus, role_arn)
        assert target["DeadLetterConfig"]["Arn"].startswith(f"arn:aws:sqs:{region}:")
    (policy_name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
    if isinstance(document, str):
        document = json.loads(document) if document.startswith('{"') else ast.literal_eval(document)
    assert [(s["Action"], s["Resource"]) for s in document["Statement"]] == [(["events:PutEvents"], home_bus)]

    # Taken off the list: that region's forwarder stack goes; the others stay.
    run = _deploy(moto, ec2, CFN_SourceRegions="us-west-2")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert f"== deleted {STACK}-forwarder in eu-west-1" in run.stdout
    assert _forwarder_rule(moto, "us-west-2")
    assert not [s for s in moto.client("cloudformation", "eu-west-1").list_stacks()["StackSummaries"]
                if s["StackName"] == f"{STACK}-forwarder" and s["StackStatus"] != "DELETE_COMPLETE"]


def test_make_deploy_tells_every_task_when_redis_is_a_cluster(moto: MotoServer) -> None:
    """RedisClusterMode=true (here with an existing cluster: moto creates no ElastiCache): every task gets
    REDIS_CLUSTER=true beside the URL of one node or the configuration endpoint."""
    url, stack = "rediss://clustercfg.redis.internal:6379/0", f"{STACK}-cluster"  # a stack of its own, created
    run = _deploy(moto, moto.client("ec2"), stack, CFN_RedisClusterMode="true", CFN_ExistingRedisUrl=url)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    resources = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in moto.client("cloudformation")
                 .list_stack_resources(StackName=stack)["StackResourceSummaries"] if r["LogicalResourceId"]}
    ecs = moto.client("ecs")
    for name in ("ConsumerTaskDefinition", "EnforcerTaskDefinition", "NotifierTaskDefinition",
                 "MigrateTaskDefinition"):
        (container,) = ecs.describe_task_definition(taskDefinition=resources[name])["taskDefinition"][
            "containerDefinitions"]
        environment = {e["name"]: e["value"] for e in container["environment"]}
        assert (environment["REDIS_URL"], environment["REDIS_CLUSTER"]) == (url, "true"), name
