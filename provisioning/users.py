"""People: an IAM user per person, tagged as the consumer reads people (Person, Team, Email, Tool,
Language), in their team's group, and recorded in `principals` with that team before their first call.

No console password and no access keys are made: a person reaches Bedrock through an API key (issue 15,
part 3) or an identity an admin gives them. Like teams.py, each function returns the plan of changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from provisioning import api_keys, directory, journal, names
from provisioning.changes import Plan
from provisioning.parts import Parts

TAG_KEYS = ("Person", "Team", "Email", "Tool", "Language")  # what the consumer and the notifier read


@dataclass(frozen=True)
class NewPerson:
    user: str
    person: str
    team: str
    email: str | None = None
    tool: str | None = None
    language: str | None = None

    def checked(self, parts: Parts) -> NewPerson:
        return NewPerson(
            names.check_user(self.user), names.check_tag("--person", self.person), parts.names.check_team(self.team),
            names.check_email(self.email) if self.email else None,
            names.check_tag("--tool", self.tool, 128) if self.tool else None,
            names.check_language(self.language) if self.language else None)

    def tags(self) -> dict[str, str]:
        given = (self.person, self.team, self.email, self.tool, self.language)
        return {k: v for k, v in zip(TAG_KEYS, given, strict=True) if v}


def _team_group(parts: Parts, team: str) -> str:
    group = parts.names.group(team)
    if parts.iam.group(group) is None:
        raise ValueError(f"team {team!r} does not exist (bedrockctl team create {team})")
    return group


def _team_groups(parts: Parts, user: str) -> list[str]:
    """The user's groups that are teams (named with the prefix)."""
    return [g for g in parts.iam.groups_of(user) if parts.names.team_of_group(g)]


def _record(parts: Parts, plan: Plan, key: str, tags: dict[str, str], user: str) -> None:
    """Add recording the person in `principals`, if that changes anything."""
    wanted = directory.Person(key, parts.names.account_id, tags.get("Person") or user, tags["Team"],
                              tags.get("Email"), tags)
    row = directory.person(parts.conn, key)
    changed = directory.differences(row, wanted)
    if row and row["team_source"] == "quota_file" and row["team"] != wanted.team:
        plan.notes.append(f"the quota file puts {user} in team {row['team']}; it wins over the Team tag")
    if changed:
        plan.add(f"MySQL: record {key} in team {wanted.team} ({', '.join(changed)})",
                 partial(directory.record_person, parts.conn, wanted))


def create(parts: Parts, asked: NewPerson) -> Plan:
    asked = asked.checked(parts)
    iam, user = parts.iam, asked.user
    group = _team_group(parts, asked.team)
    plan = Plan("user create", user)
    existing = iam.user(user)
    wanted = asked.tags()
    if existing is None:
        key = parts.names.user_key(user)
        plan.add(f"IAM: create user {user} (path {parts.names.path}; no password, no access keys) tagged "
                 + ", ".join(f"{k}={v}" for k, v in wanted.items()),
                 partial(iam.create_user, user, parts.names.path, wanted))
        tags, groups = wanted, []
    else:
        key = str(existing["Arn"])
        groups = _team_groups(parts, user)
        others = [parts.names.team_of_group(g) for g in groups if g != group]
        if others:
            raise ValueError(f"{user} is in team {others[0]}, not {asked.team}:"
                             f" bedrockctl user move {user} --team {asked.team}")
        retag = {k: v for k, v in wanted.items() if existing["Tags"].get(k) != v}
        if retag:
            plan.add("IAM: tag user " + ", ".join(f"{k}={v}" for k, v in retag.items()),
                     partial(iam.tag_user, user, retag))
        tags = {**existing["Tags"], **wanted}
    if group not in groups:
        plan.add(f"IAM: add {user} to group {group}", partial(iam.add_to_group, user, group))
    _record(parts, plan, key, tags, user)
    return plan


def move(parts: Parts, user: str, team: str) -> Plan:
    names.check_user(user)
    parts.names.check_team(team)
    iam = parts.iam
    group = _team_group(parts, team)
    existing = iam.user(user)
    if existing is None:
        raise ValueError(f"no IAM user {user!r} (bedrockctl user create)")
    plan = Plan("user move", user)
    groups = _team_groups(parts, user)
    for old in groups:
        if old != group:
            plan.add(f"IAM: remove {user} from group {old}", partial(iam.remove_from_group, user, old))
    if group not in groups:
        plan.add(f"IAM: add {user} to group {group}", partial(iam.add_to_group, user, group))
    if existing["Tags"].get("Team") != team:
        plan.add(f"IAM: tag user Team={team} (was {existing['Tags'].get('Team') or 'none'})",
                 partial(iam.tag_user, user, {"Team": team}))
    if plan.changes:
        plan.notes.append("calls already made stay with the team they were charged to")
    _record(parts, plan, str(existing["Arn"]), {**existing["Tags"], "Team": team}, user)
    return plan


def delete(parts: Parts, user: str, *, actor: str) -> Plan:
    """Everything IAM refuses to delete a user with, then the user; `principals` and usage history stay.
    Its Bedrock API keys are deleted as `user revoke-key` deletes them, and recorded as revoked by `actor`."""
    names.check_user(user)
    iam = parts.iam
    plan = Plan("user delete", user)
    existing = iam.user(user)
    if existing is None:
        plan.notes.append(f"no IAM user {user}")
        api_keys.delete_all(parts, plan, user, actor=actor)  # keys still recorded as live: recorded deleted
        return plan
    if existing["Path"] != parts.names.path:
        raise ValueError(f"refused: {user} (path {existing['Path']}) was not provisioned here"
                         f" (PROVISIONING_PATH {parts.names.path}); delete it in IAM")
    for group in iam.groups_of(user):
        plan.add(f"IAM: remove from group {group}", partial(iam.remove_from_group, user, group))
    for name in iam.inline_policies(user):
        plan.add(f"IAM: delete inline policy {name}", partial(iam.delete_inline_policy, user, name))
    for arn in iam.attached_to_user(user):
        plan.add(f"IAM: detach {arn}", partial(iam.detach_from_user, user, arn))
    for key_id in iam.access_keys(user):
        plan.add(f"IAM: delete access key {key_id}", partial(iam.delete_access_key, user, key_id))
    bedrock_keys = api_keys.delete_all(parts, plan, user, actor=actor)
    for credential in iam.credentials.ids(user):
        if credential not in bedrock_keys:  # another service's (CodeCommit, Keyspaces…): nothing recorded
            plan.add(f"IAM: delete service-specific credential {credential}",
                     partial(iam.credentials.delete, user, credential))
    if iam.has_login_profile(user):
        plan.add("IAM: delete console password", partial(iam.delete_login_profile, user))
    plan.add(f"IAM: delete user {existing['Arn']} (usage history kept)", partial(iam.delete_user, user))
    return plan


def info(parts: Parts, user: str) -> dict[str, Any]:
    names.check_user(user)
    existing = parts.iam.user(user)
    if existing is None:
        deleted = journal.deletion(parts.conn, user)
        gone = journal.missing_user(user, deleted)
        if deleted is not None:  # what of them stays, and where to read it
            gone += (f"; its usage history (bedrockctl usage --user {parts.names.user_key(user)}) and the"
                     f" records of its Bedrock API keys (bedrockctl user keys {user}) stay")
        raise ValueError(gone)
    key = str(existing["Arn"])
    row = directory.person(parts.conn, key)
    return {
        "user": user, "quota_key": key, "path": existing["Path"], "created": str(existing["CreateDate"]),
        "tags": existing["Tags"], "groups": parts.iam.groups_of(user),
        "access_keys": len(parts.iam.access_keys(user)), "console_password": parts.iam.has_login_profile(user),
        "team": row["team"] if row else None, "team_source": row["team_source"] if row else None,
        "resolved": bool(row and row["resolved_at"]),
    }


def listing(parts: Parts, team: str | None) -> list[dict[str, Any]]:
    """People provisioned under the path (or the members of one team), with their tags."""
    if team is not None:
        parts.names.check_team(team)
        group = parts.iam.group(parts.names.group(team))
        if group is None:
            raise ValueError(f"team {team!r} does not exist")
        users = group["Members"]
    else:
        users = sorted(str(u["UserName"]) for u in parts.iam.users(parts.names.path))
    found = []
    for name in users:
        user = parts.iam.user(name)
        if user is None:  # deleted while listing
            continue
        tags = user["Tags"]
        teams = [parts.names.team_of_group(g) for g in _team_groups(parts, name)]
        found.append({"user": name, "person": tags.get("Person"), "team": ", ".join(t for t in teams if t) or None,
                      "email": tags.get("Email"), "tool": tags.get("Tool"), "quota_key": user["Arn"]})
    return found
