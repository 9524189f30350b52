"""Teams: an IAM group per team with its managed Bedrock policy attached, and the team's row in `teams`.

Each function compares IAM and MySQL with what is asked and returns the plan of changes
(provisioning.changes runs it); reading functions return what `team list` and `team show` print.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from bedrock_usage.config import SettingsError
from provisioning import directory, policy
from provisioning.changes import Plan
from provisioning.iam import MAX_POLICY_VERSIONS
from provisioning.parts import Parts
from provisioning.settings import model_patterns


def _models(parts: Parts, models: Sequence[str] | None) -> tuple[str, ...]:
    if not models:
        return parts.settings.provisioning_default_models
    try:
        return model_patterns("--models", tuple(dict.fromkeys(models)))
    except SettingsError as error:
        raise ValueError(str(error)) from None


def _missing(team: str) -> ValueError:
    return ValueError(f"team {team!r} does not exist (bedrockctl team create {team})")


def create(parts: Parts, team: str, models: Sequence[str] | None) -> Plan:
    iam, names = parts.iam, parts.names
    names.check_team(team)
    wanted = _models(parts, models)
    group, arn = names.group(team), names.policy_arn(team)
    plan = Plan("team create", team)
    found = iam.group(group)
    if found is None:
        plan.add(f"IAM: create group {group} (path {names.path})", lambda: iam.create_group(group, names.path))
    doc = iam.policy_document(arn)
    if doc is None:
        plan.add(f"IAM: create policy {arn} allowing {', '.join(wanted)}",
                 lambda: iam.create_policy(group, names.path, policy.document(wanted),
                                           f"Bedrock models of team {team} (bedrockctl team policy)"))
    elif models and policy.patterns_of(doc) != wanted:
        plan.notes.append(f"the policy allows {', '.join(policy.patterns_of(doc))}, not changed here:"
                          f" bedrockctl team policy {team} --models …")
    if found is None or arn not in iam.attached_to_group(group):
        plan.add(f"IAM: attach {arn} to group {group}", lambda: iam.attach_to_group(group, arn))
    if not directory.team_registered(parts.conn, team):
        plan.add(f"MySQL: register team {team}", lambda: directory.register_team(parts.conn, team))
    return plan


def set_policy(parts: Parts, team: str, models: Sequence[str]) -> Plan:
    iam, names = parts.iam, parts.names
    names.check_team(team)
    wanted = _models(parts, models)
    arn = names.policy_arn(team)
    doc = iam.policy_document(arn)
    if doc is None:
        raise _missing(team)
    plan = Plan("team policy", team)
    if policy.patterns_of(doc) == wanted and doc == policy.document(wanted):
        return plan
    # Room for the new version: the oldest versions that are not the default go (IAM keeps 5).
    old = [v for v in iam.versions(arn) if not v["IsDefaultVersion"]]
    for version in old[:max(0, len(old) + 2 - MAX_POLICY_VERSIONS)]:
        version_id = str(version["VersionId"])
        plan.add(f"IAM: delete old policy version {version_id} (IAM keeps {MAX_POLICY_VERSIONS})",
                 partial(iam.delete_version, arn, version_id))
    plan.add(f"IAM: new default policy version allowing {', '.join(wanted)}"
             f" (was {', '.join(policy.patterns_of(doc)) or 'nothing'})",
             lambda: iam.create_version(arn, policy.document(wanted)))
    return plan


def delete(parts: Parts, team: str) -> Plan:
    iam, names, conn = parts.iam, parts.names, parts.conn
    names.check_team(team)
    group, arn = names.group(team), names.policy_arn(team)
    found = iam.group(group)
    if found and found["Members"]:
        members = found["Members"]
        shown = ", ".join(members[:5]) + (f" and {len(members) - 5} more" if len(members) > 5 else "")
        raise ValueError(f"refused: team {team} has {len(members)} member(s) ({shown});"
                         " move them (bedrockctl user move) or delete them first")
    plan = Plan("team delete", team)
    if found and arn in iam.attached_to_group(group):
        plan.add(f"IAM: detach {arn} from group {group}", lambda: iam.detach_from_group(group, arn))
    if iam.policy_document(arn) is not None:
        for version in iam.versions(arn):
            if not version["IsDefaultVersion"]:
                version_id = str(version["VersionId"])
                plan.add(f"IAM: delete policy version {version_id}",
                         partial(iam.delete_version, arn, version_id))
        plan.add(f"IAM: delete policy {arn}", lambda: iam.delete_policy(arn))
    if found:
        plan.add(f"IAM: delete group {group}", lambda: iam.delete_group(group))
    if directory.team_registered(conn, team):
        if directory.team_limits(conn, team) is not None:
            plan.notes.append(f"the quota file gives team {team} limits: its row stays until the file drops it")
        else:
            plan.add(f"MySQL: unregister team {team} (its usage history stays)",
                     lambda: directory.unregister_team(conn, team))
    return plan


def listing(parts: Parts) -> list[dict[str, Any]]:
    """Every team provisioned in IAM (groups under the path with the prefix), with its members and models."""
    found = []
    for group in sorted(parts.iam.groups(parts.names.path), key=lambda g: str(g["GroupName"])):
        team = parts.names.team_of_group(str(group["GroupName"]))
        if team is None:
            continue
        doc = parts.iam.policy_document(parts.names.policy_arn(team))
        members = (parts.iam.group(str(group["GroupName"])) or {}).get("Members", [])
        found.append({"team": team, "group": group["GroupName"], "members": len(members),
                      "models": list(policy.patterns_of(doc)) if doc else None,
                      "registered": directory.team_registered(parts.conn, team)})
    return found


def show(parts: Parts, team: str) -> dict[str, Any]:
    names = parts.names
    names.check_team(team)
    group, arn = names.group(team), names.policy_arn(team)
    found = parts.iam.group(group)
    doc = parts.iam.policy_document(arn)
    if found is None and doc is None:
        raise _missing(team)
    own = directory.team_limits(parts.conn, team)
    limits = own or parts.settings.team_defaults
    return {
        "team": team, "group": group if found else None, "members": found["Members"] if found else [],
        "policy": arn if doc else None, "models": list(policy.patterns_of(doc)) if doc else [],
        "policy_versions": len(parts.iam.versions(arn)) if doc else 0,
        "attached": bool(found) and arn in parts.iam.attached_to_group(group),
        "registered": directory.team_registered(parts.conn, team),
        "limits_from": "quota file" if own else "defaults",
        "daily_requests": limits.daily, "monthly_requests": limits.monthly,
        "daily_cost_nanos": limits.daily_cost, "monthly_cost_nanos": limits.monthly_cost,
        "counted_people": directory.team_members(parts.conn, team),
    }
