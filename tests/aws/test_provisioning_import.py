"""bedrockctl user import FILE (issue 15: "what an admin onboarding fifty people on a Monday would expect"): moto's
IAM, real MariaDB; every line checked before anything is written, each person as `user create` makes them."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pymysql
import pytest

from tests.aws.conftest import Cli
from tests.aws.test_provisioning import audit_rows, iam_state, principal

ACCOUNT = "123456789012"  # moto's

PEOPLE = """# Monday's starters (exported from the HR sheet)
username,person,team,email,tool,language

ana,"Ana García",data,ana@example.com,claude-code,es
bruno, Bruno Díaz ,data,,,
chen,Chen Li,web,chen@example.com,cline,
"""


@pytest.fixture
def cli(admin_cli: Cli) -> Cli:
    assert admin_cli("team", "create", "data")[0] == 0 and admin_cli("team", "create", "web")[0] == 0
    return admin_cli


def _tags(iam: Any, user: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName=user)["Tags"]}


def test_import_checks_then_creates_everyone_and_a_second_run_changes_nothing(
        cli: Cli, moto_iam: Any, mysql: pymysql.connections.Connection, tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_text("\ufeff" + PEOPLE, encoding="utf-8")  # as a spreadsheet saves it, byte-order mark included
    before = iam_state(moto_iam)

    code, out, err = cli("user", "import", str(people), "--dry-run", "--by", "hr-lead")
    assert code == 0 and out.count("dry run: user create") == 3, err
    assert out.rstrip().endswith("user import: 3 people; would change 3, 0 already as asked; nothing written")
    assert iam_state(moto_iam) == before and principal(mysql, f"arn:aws:iam::{ACCOUNT}:user/bedrock-access/ana") is None

    code, out, _ = cli("user", "import", str(people), "--by", "hr-lead")
    assert code == 0 and out.rstrip().endswith("user import: 3 people; changed 3, 0 already as asked")
    assert _tags(moto_iam, "ana") == {"Person": "Ana García", "Team": "data", "Email": "ana@example.com",
                                      "Tool": "claude-code", "Language": "es"}
    assert _tags(moto_iam, "bruno") == {"Person": "Bruno Díaz", "Team": "data"}  # cells trimmed, empty = not given
    assert [g["GroupName"] for g in moto_iam.list_groups_for_user(UserName="chen")["Groups"]] == ["bedrock-team-web"]
    for user, team in (("ana", "data"), ("bruno", "data"), ("chen", "web")):
        row = principal(mysql, f"arn:aws:iam::{ACCOUNT}:user/bedrock-access/{user}")
        assert row is not None and row["team"] == team  # charged to the team from the first call
    assert [(a, act, t) for a, act, t, _ in audit_rows(mysql)][2:] == [
        ("hr-lead", "user create", "ana"), ("hr-lead", "user create", "bruno"), ("hr-lead", "user create", "chen")]

    after = iam_state(moto_iam)
    code, out, _ = cli("user", "import", str(people), "--by", "hr-lead")
    assert code == 0 and out.count("no change") == 3
    assert out.rstrip().endswith("user import: 3 people; changed 0, 3 already as asked")
    assert iam_state(moto_iam) == after and len(audit_rows(mysql)) == 5  # two teams, three people


def test_a_file_with_mistakes_reports_every_one_with_its_line_and_writes_nothing(
        cli: Cli, moto_iam: Any, mysql: pymysql.connections.Connection, tmp_path: Path) -> None:
    assert cli("user", "create", "dana", "--person", "Dana", "--team", "web")[0] == 0
    before, audited = iam_state(moto_iam), audit_rows(mysql)
    people = tmp_path / "people.csv"
    people.write_text("\n".join([
        "username,person,team,email",
        "ana,Ana,data,ana@example.com",  # line 2: fine
        "eve,,data,",  # 3: no person
        "frank,Frank,sales,",  # 4: no such team
        "gus,Gus,data,not-an-email",  # 5
        "ANA,Ana Again,data,",  # 6: IAM's names ignore case
        "hal,Hal, Jr.,data,",  # 7: an unquoted comma
        "dana,Dana,data,",  # 8: in team web already
        "bad name!,Ivy,data,",  # 9
    ]) + "\n", encoding="utf-8")

    code, out, err = cli("user", "import", str(people))
    assert code == 2 and out == ""
    problems = err.splitlines()[1:]
    assert [p.split(":")[0].strip() for p in problems] == [
        "line 3", "line 4 (frank)", "line 5 (gus)", "line 6", "line 7", "line 8 (dana)", "line 9 (bad name!)"]
    assert "no person" in problems[0] and "quote a value" in problems[4] and "bedrockctl team create sales" in err
    assert "is on line 2 too" in problems[3] and "bedrockctl user move dana --team data" in err
    assert iam_state(moto_iam) == before and audit_rows(mysql) == audited

    for header in ("username,person\nana,Ana\n", "username,person,team,phone\n", ""):
        people.write_text(header, encoding="utf-8")
        code, _, err = cli("user", "import", str(people))
        assert code == 2 and "header: the columns are username, person, team" in err
    assert cli("user", "import", str(tmp_path / "missing.csv"))[0] == 2
    assert iam_state(moto_iam) == before


def test_import_reads_standard_input(cli: Cli, moto_iam: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("username,person,team\nzoe,Zoe,web\n"))
    code, out, _ = cli("user", "import", "-", "--by", "hr-lead")
    assert code == 0 and "changed 1" in out and _tags(moto_iam, "zoe") == {"Person": "Zoe", "Team": "web"}


def test_a_file_not_in_utf8_or_with_a_repeated_column_is_refused_clearly(
        cli: Cli, moto_iam: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    people = tmp_path / "people.csv"
    people.write_bytes("username,person,team\nana,Ana García,data\n".encode("cp1252"))  # Excel's plain "CSV"
    code, _, err = cli("user", "import", str(people))
    assert code == 2 and "not UTF-8 text" in err and "nothing imported" in err
    people.write_text("username,person,team,Team\nana,Ana,data,data\n", encoding="utf-8")
    code, _, err = cli("user", "import", str(people))
    assert code == 2 and "repeated: team" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("\ufeffusername,person,team\nzoe,Zoe,web\n"))  # a BOM on stdin
    assert cli("user", "import", "-")[0] == 0 and _tags(moto_iam, "zoe")["Team"] == "web"
