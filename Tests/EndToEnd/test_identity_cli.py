"""The Identity API driven by the unmodified `openstack` CLI.

Each test creates what it needs under unique names, checks the values the CLI
prints (not only its exit status), and cleans up after itself where that is
part of what is tested.
"""

from __future__ import annotations

import base64
import json
import datetime as dt
import hashlib
import hmac
import urllib.parse
from pathlib import Path

import pytest
import yaml

from conftest import Nimbus, unique

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def by_name(rows: list[dict], name: str, key: str = "Name") -> dict:
    found = [r for r in rows if r.get(key) == name]
    assert len(found) == 1, f"expected one row with {key}={name!r} in {rows}"
    return found[0]


def assignment_rows(osc, *args: str) -> list[dict]:
    """`role assignment list --names ARGS` as (Role, User, Group, Project, Domain) dicts."""
    rows = osc("role", "assignment", "list", "--names", *args)
    for r in rows:
        assert set(r) >= {"Role", "User", "Group", "Project", "Domain", "System", "Inherited"}, r
    return rows


def roles_in(rows: list[dict], **match: str) -> set[str]:
    return {r["Role"] for r in rows if all(r[k] == v for k, v in match.items())}


def make_domain(osc) -> dict:
    return osc("domain", "create", unique("dom"), "--description", "e2e domain")


def make_user(osc, domain: str = "default", password: str | None = None, **kw: str) -> dict:
    args = ["user", "create", unique("user"), "--domain", domain]
    if password is not None:
        args += ["--password", password]
    for k, v in kw.items():
        args += [f"--{k.replace('_', '-')}", v]
    return osc(*args)


def make_project(osc, domain: str = "default") -> dict:
    return osc("project", "create", unique("proj"), "--domain", domain)


def delete_domain(osc, domain_id: str) -> None:
    osc("domain", "set", "--disable", domain_id)
    osc("domain", "delete", domain_id)


# ---------------------------------------------------------------------------
# Bootstrap, tokens and the catalog
# ---------------------------------------------------------------------------


def test_bootstrap_files(nimbus: Nimbus):
    doc = yaml.safe_load(nimbus.clouds_yaml.read_text())
    cloud = doc["clouds"]["nimbus"]
    assert cloud["auth"]["auth_url"].rstrip("/") == nimbus.auth_url
    assert cloud["auth"]["username"] == "admin"
    assert cloud["auth"]["password"] == nimbus.admin_password
    assert cloud["auth"]["project_name"] == "admin"
    auth = cloud["auth"]
    assert auth.get("user_domain_name") == "Default" or auth.get("user_domain_id") == "default"
    assert (auth.get("project_domain_name") == "Default"
            or auth.get("project_domain_id") == "default")
    assert cloud["region_name"] == "RegionOne"
    assert str(cloud["identity_api_version"]) == "3"
    openrc = (nimbus.data_dir / "openrc").read_text()
    assert "OS_AUTH_URL" in openrc and nimbus.auth_url in openrc
    if nimbus.backend == "sqlite":
        assert (nimbus.data_dir / "nimbus.db").exists()


def test_token_issue(osc, nimbus: Nimbus, ids):
    token = osc("token", "issue")
    assert set(token) >= {"id", "expires", "project_id", "user_id"}
    assert token["user_id"] == ids["admin_user"]
    assert token["project_id"] == ids["admin_project"]
    assert len(token["id"]) >= 16
    expires = dt.datetime.strptime(token["expires"], "%Y-%m-%dT%H:%M:%S%z")
    now = dt.datetime.now(dt.timezone.utc)
    assert now + dt.timedelta(minutes=5) < expires < now + dt.timedelta(days=2)

    # The token the CLI got is a real one: validate it over HTTP.
    r = nimbus.http(
        "GET", "/identity/v3/auth/tokens",
        token=token["id"], headers={"X-Subject-Token": token["id"]},
    )
    assert r.status_code == 200, r.text
    body = r.json()["token"]
    assert body["user"]["name"] == "admin"
    assert body["user"]["domain"]["id"] == "default"
    assert body["project"]["name"] == "admin"
    assert {"admin", "member", "reader"} <= {role["name"] for role in body["roles"]}
    assert body["methods"] == ["password"]


def test_token_issue_wrong_password(osc, nimbus: Nimbus, tmp_path: Path):
    env = nimbus.password_cloud(tmp_path / "clouds.yaml", "admin", "not-the-password",
                                project="admin")
    result = osc("token", "issue", cloud="test", env=env, expect_fail=True)
    assert "401" in result.stderr, result.stderr


def test_catalog_list(osc, nimbus: Nimbus):
    catalog = osc("catalog", "list")
    identity = [s for s in catalog if s["Type"] == "identity"]
    assert len(identity) == 1, catalog
    endpoints = identity[0]["Endpoints"]
    assert {e["interface"] for e in endpoints} >= {"public"}
    for e in endpoints:
        assert e["url"].rstrip("/") in (nimbus.auth_url, nimbus.identity_url), e
        assert e["region_id"] == "RegionOne", e


# ---------------------------------------------------------------------------
# Domains, projects, users, groups, roles: create / list / show / set / delete
# ---------------------------------------------------------------------------


def test_domain_lifecycle(osc):
    name = unique("dom")
    created = osc("domain", "create", name, "--description", "first")
    assert created["name"] == name
    assert created["description"] == "first"
    assert created["enabled"] is True
    domain_id = created["id"]

    row = by_name(osc("domain", "list"), name)
    assert row["ID"] == domain_id and row["Enabled"] is True
    assert row["Description"] == "first"
    assert by_name(osc("domain", "list"), "Default")["ID"] == "default"

    shown = osc("domain", "show", name)
    assert shown["id"] == domain_id and shown["name"] == name

    new_name = unique("dom-renamed")
    osc("domain", "set", "--name", new_name, "--description", "second", domain_id)
    shown = osc("domain", "show", domain_id)
    assert (shown["name"], shown["description"], shown["enabled"]) == (new_name, "second", True)

    # An enabled domain cannot be deleted.
    failed = osc("domain", "delete", domain_id, expect_fail=True)
    assert "403" in failed.stderr or "disable" in failed.stderr.lower(), failed.stderr

    osc("domain", "set", "--disable", domain_id)
    assert osc("domain", "show", domain_id)["enabled"] is False
    osc("domain", "delete", domain_id)
    assert osc("domain", "show", domain_id, expect_fail=True).returncode != 0
    assert all(r["ID"] != domain_id for r in osc("domain", "list"))


def test_project_lifecycle(osc):
    domain = make_domain(osc)
    name = unique("proj")
    created = osc("project", "create", name, "--domain", domain["name"],
                  "--description", "a project")
    assert created["name"] == name
    assert created["domain_id"] == domain["id"]
    assert created["description"] == "a project"
    assert created["enabled"] is True
    assert created["is_domain"] is False
    project_id = created["id"]

    listed = osc("project", "list", "--domain", domain["id"])
    assert [r["ID"] for r in listed] == [project_id]
    assert listed[0]["Name"] == name

    shown = osc("project", "show", "--domain", domain["name"], name)
    assert shown["id"] == project_id

    # A child project.
    child = osc("project", "create", unique("child"), "--domain", domain["id"],
                "--parent", project_id)
    assert child["parent_id"] == project_id
    assert child["domain_id"] == domain["id"]

    assert {r["ID"] for r in osc("project", "list", "--domain", domain["id"])} == {
        project_id, child["id"]}
    osc("project", "delete", child["id"])

    new_name = unique("proj-renamed")
    osc("project", "set", "--name", new_name, "--description", "renamed", "--disable",
        project_id)
    shown = osc("project", "show", project_id)
    assert (shown["name"], shown["description"], shown["enabled"]) == (new_name, "renamed", False)

    osc("project", "delete", project_id)
    assert osc("project", "show", project_id, expect_fail=True).returncode != 0
    assert osc("project", "list", "--domain", domain["id"]) == []
    delete_domain(osc, domain["id"])


def test_user_lifecycle(osc, nimbus: Nimbus, tmp_path: Path):
    domain = make_domain(osc)
    project = make_project(osc, domain["id"])
    name = unique("user")
    created = osc("user", "create", name, "--domain", domain["id"],
                  "--project", project["id"], "--password", "S3cret-pass",
                  "--email", "someone@example.org", "--description", "a user")
    assert created["name"] == name
    assert created["domain_id"] == domain["id"]
    assert created["default_project_id"] == project["id"]
    assert created["email"] == "someone@example.org"
    assert created["description"] == "a user"
    assert created["enabled"] is True
    assert "password" not in created
    user_id = created["id"]

    listed = osc("user", "list", "--domain", domain["id"])
    assert [(r["ID"], r["Name"]) for r in listed] == [(user_id, name)]

    shown = osc("user", "show", "--domain", domain["name"], name)
    assert shown["id"] == user_id and shown["email"] == "someone@example.org"

    # The password given at creation works (an unscoped token needs no role).
    token, body = nimbus.issue_token(name, "S3cret-pass", domain=domain["name"])
    assert body["token"]["user"]["id"] == user_id

    new_name = unique("user-renamed")
    osc("user", "set", "--name", new_name, "--email", "other@example.org", "--disable",
        user_id)
    shown = osc("user", "show", user_id)
    assert (shown["name"], shown["email"], shown["enabled"]) == (
        new_name, "other@example.org", False)

    # A disabled user cannot authenticate.
    nimbus.issue_token(new_name, "S3cret-pass", domain=domain["name"], expect=401)

    osc("user", "delete", user_id)
    assert osc("user", "show", user_id, expect_fail=True).returncode != 0
    assert osc("user", "list", "--domain", domain["id"]) == []
    osc("project", "delete", project["id"])
    delete_domain(osc, domain["id"])


def test_group_lifecycle_and_membership(osc):
    domain = make_domain(osc)
    name = unique("grp")
    created = osc("group", "create", name, "--domain", domain["id"],
                  "--description", "a group")
    assert created["name"] == name
    assert created["domain_id"] == domain["id"]
    assert created["description"] == "a group"
    group_id = created["id"]

    listed = osc("group", "list", "--domain", domain["id"])
    assert [(r["ID"], r["Name"]) for r in listed] == [(group_id, name)]
    assert osc("group", "show", "--domain", domain["name"], name)["id"] == group_id

    member = make_user(osc, domain["id"])
    outsider = make_user(osc, domain["id"])
    osc("group", "add", "user", group_id, member["id"])

    out = osc("group", "contains", "user", group_id, member["id"])
    assert f"{member['id']} in group {group_id}" in out
    outsider_check = osc("group", "contains", "user", group_id, outsider["id"], fmt=None)
    assert "in group" not in outsider_check  # printed on stderr as "... not in group ..."

    members = osc("user", "list", "--group", group_id, "--domain", domain["id"])
    assert [r["ID"] for r in members] == [member["id"]]

    new_name = unique("grp-renamed")
    osc("group", "set", "--name", new_name, "--description", "renamed", group_id)
    shown = osc("group", "show", group_id)
    assert (shown["name"], shown["description"]) == (new_name, "renamed")

    osc("group", "remove", "user", group_id, member["id"])
    assert osc("user", "list", "--group", group_id, "--domain", domain["id"]) == []

    osc("group", "delete", group_id)
    assert osc("group", "show", group_id, expect_fail=True).returncode != 0
    for u in (member, outsider):
        osc("user", "delete", u["id"])
    delete_domain(osc, domain["id"])


def test_role_lifecycle(osc):
    name = unique("role")
    created = osc("role", "create", name, "--description", "a role")
    assert created["name"] == name
    assert created["description"] == "a role"
    assert created["domain_id"] is None
    role_id = created["id"]

    listed = osc("role", "list")
    assert by_name(listed, name)["ID"] == role_id
    assert {"admin", "member", "reader"} <= {r["Name"] for r in listed}

    assert osc("role", "show", name)["id"] == role_id

    new_name = unique("role-renamed")
    osc("role", "set", "--name", new_name, "--description", "renamed", role_id)
    shown = osc("role", "show", role_id)
    assert (shown["name"], shown["description"]) == (new_name, "renamed")

    osc("role", "delete", new_name)
    assert osc("role", "show", role_id, expect_fail=True).returncode != 0
    assert all(r["ID"] != role_id for r in osc("role", "list"))


# ---------------------------------------------------------------------------
# Role assignments
# ---------------------------------------------------------------------------


def test_role_add_remove_user_and_group_on_project_and_domain(osc):
    domain = make_domain(osc)
    dname = domain["name"]
    project = make_project(osc, domain["id"])
    pname = project["name"]
    user = make_user(osc, domain["id"])
    group = osc("group", "create", unique("grp"), "--domain", domain["id"])
    role = osc("role", "create", unique("role"))
    rname = role["name"]
    u_at = f"{user['name']}@{dname}"
    g_at = f"{group['name']}@{dname}"
    p_at = f"{pname}@{dname}"

    # user on project
    osc("role", "add", "--user", user["id"], "--project", project["id"], rname)
    rows = assignment_rows(osc, "--user", user["id"])
    assert {(r["Role"], r["User"], r["Project"], r["Domain"]) for r in rows} == {
        (rname, u_at, p_at, "")}

    # user on domain
    osc("role", "add", "--user", user["id"], "--domain", domain["id"], rname)
    rows = assignment_rows(osc, "--user", user["id"])
    assert {(r["Role"], r["Project"], r["Domain"]) for r in rows} == {
        (rname, p_at, ""), (rname, "", dname)}

    # group on project and on domain
    osc("role", "add", "--group", group["id"], "--project", project["id"], rname)
    osc("role", "add", "--group", group["id"], "--domain", domain["id"], rname)
    rows = assignment_rows(osc, "--group", group["id"])
    assert {(r["Role"], r["Group"], r["User"], r["Project"], r["Domain"]) for r in rows} == {
        (rname, g_at, "", p_at, ""), (rname, g_at, "", "", dname)}

    # filtered by target
    rows = assignment_rows(osc, "--project", project["id"])
    assert {(r["User"], r["Group"]) for r in rows} == {(u_at, ""), ("", g_at)}
    rows = assignment_rows(osc, "--domain", domain["id"])
    assert {(r["User"], r["Group"]) for r in rows} == {(u_at, ""), ("", g_at)}
    rows = assignment_rows(osc, "--role", role["id"])
    assert len(rows) == 4

    # remove them one by one
    osc("role", "remove", "--user", user["id"], "--project", project["id"], rname)
    rows = assignment_rows(osc, "--user", user["id"])
    assert {(r["Project"], r["Domain"]) for r in rows} == {("", dname)}
    osc("role", "remove", "--user", user["id"], "--domain", domain["id"], rname)
    assert assignment_rows(osc, "--user", user["id"]) == []
    osc("role", "remove", "--group", group["id"], "--project", project["id"], rname)
    osc("role", "remove", "--group", group["id"], "--domain", domain["id"], rname)
    assert assignment_rows(osc, "--group", group["id"]) == []
    assert assignment_rows(osc, "--role", role["id"]) == []

    osc("role", "delete", role["id"])
    osc("group", "delete", group["id"])
    osc("user", "delete", user["id"])
    osc("project", "delete", project["id"])
    delete_domain(osc, domain["id"])


def test_effective_assignments_include_implied_roles(osc):
    rows = assignment_rows(osc, "--effective", "--user", "admin", "--project", "admin")
    assert roles_in(rows, User="admin@Default", Project="admin@Default") >= {
        "admin", "member", "reader"}
    assert all(r["Group"] == "" for r in rows)

    # Without --effective only the direct assignment is listed.
    direct = assignment_rows(osc, "--user", "admin", "--project", "admin")
    assert roles_in(direct, User="admin@Default", Project="admin@Default") == {"admin"}


def test_effective_assignments_include_group_roles(osc):
    domain = make_domain(osc)
    dname = domain["name"]
    project = make_project(osc, domain["id"])
    user = make_user(osc, domain["id"])
    group = osc("group", "create", unique("grp"), "--domain", domain["id"])
    osc("group", "add", "user", group["id"], user["id"])
    osc("role", "add", "--group", group["id"], "--project", project["id"], "member")

    # Not a direct assignment of the user ...
    assert assignment_rows(osc, "--user", user["id"]) == []
    # ... but an effective one, with member's implied role reader.
    rows = assignment_rows(osc, "--effective", "--user", user["id"])
    assert roles_in(rows, User=f"{user['name']}@{dname}",
                    Project=f"{project['name']}@{dname}") == {"member", "reader"}
    assert all(r["Group"] == "" for r in rows), rows

    # Leaving the group takes the effective assignment away.
    osc("group", "remove", "user", group["id"], user["id"])
    assert assignment_rows(osc, "--effective", "--user", user["id"]) == []

    osc("group", "delete", group["id"])
    osc("user", "delete", user["id"])
    osc("project", "delete", project["id"])
    delete_domain(osc, domain["id"])


def test_implied_roles(osc):
    listed = osc("implied", "role", "list")
    pairs = {(r["Prior Role Name"], r["Implied Role Name"]) for r in listed}
    assert {("admin", "manager"), ("manager", "member"), ("member", "reader")} <= pairs

    prior = osc("role", "create", unique("prior"))
    implied = osc("role", "create", unique("implied"))
    rule = osc("implied", "role", "create", prior["name"], "--implied-role", implied["name"])
    assert rule == {"prior_role": prior["id"], "implies": implied["id"]}

    listed = osc("implied", "role", "list")
    row = by_name(listed, prior["name"], key="Prior Role Name")
    assert row["Prior Role ID"] == prior["id"]
    assert (row["Implied Role ID"], row["Implied Role Name"]) == (implied["id"], implied["name"])

    # The rule takes effect: prior on a project gives implied too.
    project = make_project(osc)
    user = make_user(osc)
    osc("role", "add", "--user", user["id"], "--project", project["id"], prior["name"])
    rows = assignment_rows(osc, "--effective", "--user", user["id"])
    assert {r["Role"] for r in rows} == {prior["name"], implied["name"]}

    osc("implied", "role", "delete", prior["name"], "--implied-role", implied["name"])
    assert all(r["Prior Role ID"] != prior["id"] for r in osc("implied", "role", "list"))
    rows = assignment_rows(osc, "--effective", "--user", user["id"])
    assert {r["Role"] for r in rows} == {prior["name"]}

    osc("user", "delete", user["id"])
    osc("project", "delete", project["id"])
    osc("role", "delete", prior["id"])
    osc("role", "delete", implied["id"])


# ---------------------------------------------------------------------------
# Regions, services, endpoints
# ---------------------------------------------------------------------------


def test_region_service_endpoint(osc, nimbus: Nimbus):
    region_id = unique("Region")
    region = osc("region", "create", region_id, "--description", "an e2e region")
    assert region == {"region": region_id, "description": "an e2e region",
                      "parent_region": None}
    child_id = unique("Sub")
    child = osc("region", "create", child_id, "--parent-region", region_id)
    assert child["parent_region"] == region_id
    rows = osc("region", "list")
    assert by_name(rows, region_id, key="Region")["Description"] == "an e2e region"
    assert by_name(rows, child_id, key="Region")["Parent Region"] == region_id
    assert any(r["Region"] == "RegionOne" for r in rows)

    stype = unique("widget")
    sname = unique("widgets")
    service = osc("service", "create", "--name", sname, "--description", "widgets", stype)
    assert (service["name"], service["type"], service["description"], service["enabled"]) == (
        sname, stype, "widgets", True)
    rows = osc("service", "list")
    assert by_name(rows, sname)["Type"] == stype
    assert any(r["Type"] == "identity" for r in rows)

    url = f"http://127.0.0.1:9/{sname}/v1"
    endpoint = osc("endpoint", "create", "--region", region_id, service["id"], "public", url)
    assert endpoint["url"] == url
    assert endpoint["interface"] == "public"
    assert endpoint["region_id"] == region_id
    assert endpoint["service_id"] == service["id"]
    assert endpoint["service_name"] == sname
    assert endpoint["service_type"] == stype
    assert endpoint["enabled"] is True
    internal = osc("endpoint", "create", "--region", region_id, service["id"], "internal",
                   url + "/internal")

    rows = osc("endpoint", "list", "--service", service["id"])
    assert {(r["ID"], r["Interface"], r["URL"], r["Region"]) for r in rows} == {
        (endpoint["id"], "public", url, region_id),
        (internal["id"], "internal", url + "/internal", region_id)}
    assert all(r["Service Name"] == sname and r["Enabled"] is True for r in rows)
    assert {r["ID"] for r in osc("endpoint", "list", "--interface", "internal",
                                 "--service", service["id"])} == {internal["id"]}

    # A new token's catalog has the new service.
    catalog = osc("catalog", "list")
    entry = by_name(catalog, sname)
    assert entry["Type"] == stype
    assert {(e["interface"], e["url"]) for e in entry["Endpoints"]} == {
        ("public", url), ("internal", url + "/internal")}

    osc("endpoint", "delete", endpoint["id"], internal["id"])
    assert osc("endpoint", "list", "--service", service["id"]) == []
    assert osc("endpoint", "show", endpoint["id"], expect_fail=True).returncode != 0
    osc("service", "delete", service["id"])
    assert all(r["ID"] != service["id"] for r in osc("service", "list"))
    osc("region", "delete", child_id)
    osc("region", "delete", region_id)
    assert all(r["Region"] not in (region_id, child_id) for r in osc("region", "list"))


# ---------------------------------------------------------------------------
# Application credentials
# ---------------------------------------------------------------------------


def appcred_env(nimbus: Nimbus, path: Path, cred_id: str, secret: str) -> dict[str, str]:
    """A clouds.yaml with cloud `appcred` that authenticates with the credential."""
    nimbus.write_clouds_yaml(path, {
        "appcred": {
            "auth_type": "v3applicationcredential",
            "auth": {
                "application_credential_id": cred_id,
                "application_credential_secret": secret,
            },
        }
    })
    return {"OS_CLIENT_CONFIG_FILE": str(path)}


def token_roles(nimbus: Nimbus, token_id: str) -> set[str]:
    r = nimbus.http("GET", "/identity/v3/auth/tokens", token=nimbus.admin_token(),
                    headers={"X-Subject-Token": token_id})
    assert r.status_code == 200, r.text
    return {role["name"] for role in r.json()["token"]["roles"]}


def test_application_credential(osc, nimbus: Nimbus, ids, tmp_path: Path):
    name = unique("appcred")
    cred = osc("application", "credential", "create", name,
               "--secret", "app-cred-secret-1", "--description", "full")
    assert cred["Name"] == name
    assert cred["Description"] == "full"
    assert cred["Project ID"] == ids["admin_project"]
    assert cred["Secret"] == "app-cred-secret-1"
    assert cred["Unrestricted"] is False
    assert cred["Expires At"] is None
    assert {r["name"] for r in cred["Roles"]} >= {"admin"}

    listed = osc("application", "credential", "list")
    assert by_name(listed, name)["ID"] == cred["ID"]
    shown = osc("application", "credential", "show", name)
    assert shown["ID"] == cred["ID"] and "Secret" not in shown

    # A second CLI invocation that authenticates with the credential.
    env = appcred_env(nimbus, tmp_path / "appcred.yaml", cred["ID"], "app-cred-secret-1")
    token = osc("token", "issue", cloud="appcred", env=env)
    assert token["user_id"] == ids["admin_user"]
    assert token["project_id"] == ids["admin_project"]
    assert {"admin", "member", "reader"} <= token_roles(nimbus, token["id"])
    projects = osc("project", "list", cloud="appcred", env=env)
    assert "admin" in {p["Name"] for p in projects}

    # A restricted credential (the default) cannot make more credentials.
    failed = osc("application", "credential", "create", unique("nested"),
                 cloud="appcred", env=env, expect_fail=True)
    assert "403" in failed.stderr, failed.stderr

    # The wrong secret is refused.
    bad_env = appcred_env(nimbus, tmp_path / "bad.yaml", cred["ID"], "wrong-secret")
    failed = osc("token", "issue", cloud="appcred", env=bad_env, expect_fail=True)
    assert "401" in failed.stderr, failed.stderr

    # Deleting it ends its use (Keystone answers 404 for an unknown credential).
    osc("application", "credential", "delete", name)
    failed = osc("token", "issue", cloud="appcred", env=env, expect_fail=True)
    assert "401" in failed.stderr or "404" in failed.stderr, failed.stderr
    assert all(c["ID"] != cred["ID"] for c in osc("application", "credential", "list"))


def trustee_env(nimbus: Nimbus, path: Path, username: str, password: str, trust_id: str) -> dict[str, str]:
    """A clouds.yaml with cloud `trustee`: the trustee's password, scoped to the trust."""
    nimbus.write_clouds_yaml(path, {
        "trustee": {
            "auth_type": "password",
            "auth": {"username": username, "password": password, "user_domain_name": "Default",
                     "trust_id": trust_id},
        }
    })
    return {"OS_CLIENT_CONFIG_FILE": str(path)}


def test_trust_and_trust_scoped_token(osc, nimbus: Nimbus, ids, tmp_path: Path):
    trustee = make_user(osc, password="Trustee-Passw0rd")
    expires = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).replace(microsecond=0)
    trust = osc("trust", "create", "--project", "admin", "--role", "reader",
                "--expiration", expires.strftime("%Y-%m-%dT%H:%M:%S"), "admin", trustee["name"])
    assert trust["trustor_user_id"] == ids["admin_user"]
    assert trust["trustee_user_id"] == trustee["id"]
    assert trust["project_id"] == ids["admin_project"]
    assert trust["is_impersonation"] is False
    assert trust["expires_at"].startswith(expires.strftime("%Y-%m-%dT%H:%M:%S"))
    assert [r["name"] for r in trust["roles"]] == ["reader"]

    listed = osc("trust", "list")
    assert [t["ID"] for t in listed if t["ID"] == trust["id"]] == [trust["id"]]
    shown = osc("trust", "show", trust["id"])
    assert shown["trustee_user_id"] == trustee["id"]

    # The trustee's token through the trust: its own user, the trust's project and role only.
    env = trustee_env(nimbus, tmp_path / "trustee.yaml", trustee["name"], "Trustee-Passw0rd", trust["id"])
    token = osc("token", "issue", cloud="trustee", env=env)
    assert token["user_id"] == trustee["id"]
    assert token["project_id"] == ids["admin_project"]
    assert token_roles(nimbus, token["id"]) == {"reader"}
    r = nimbus.http("GET", "/identity/v3/auth/tokens", token=nimbus.admin_token(),
                    headers={"X-Subject-Token": token["id"]})
    assert r.json()["token"]["OS-TRUST:trust"]["id"] == trust["id"], r.text
    # reader may list projects it is in, not create users.
    failed = osc("user", "create", unique("user"), cloud="trustee", env=env, expect_fail=True)
    assert "403" in failed.stderr, failed.stderr

    # Deleting the trust ends the token and the trustee's access through it.
    osc("trust", "delete", trust["id"])
    r = nimbus.http("GET", "/identity/v3/auth/tokens", token=nimbus.admin_token(),
                    headers={"X-Subject-Token": token["id"]})
    assert r.status_code == 404, r.text
    failed = osc("token", "issue", cloud="trustee", env=env, expect_fail=True)
    assert "401" in failed.stderr, failed.stderr
    assert all(t["ID"] != trust["id"] for t in osc("trust", "list"))


def test_trust_with_impersonation(osc, nimbus: Nimbus, ids, tmp_path: Path):
    trustee = make_user(osc, password="Trustee-Passw0rd")
    trust = osc("trust", "create", "--project", "admin", "--role", "member", "--impersonate",
                "admin", trustee["name"])
    assert trust["is_impersonation"] is True
    env = trustee_env(nimbus, tmp_path / "trustee.yaml", trustee["name"], "Trustee-Passw0rd", trust["id"])
    token = osc("token", "issue", cloud="trustee", env=env)
    # The token acts as the trustor, with the delegated role and what it implies.
    assert token["user_id"] == ids["admin_user"]
    assert token_roles(nimbus, token["id"]) == {"member", "reader"}
    osc("trust", "delete", trust["id"])


def ec2_v2_signature(secret: str, verb: str, host: str, path: str, params: dict[str, str]) -> str:
    """AWS signature version 2, computed here with Python's hmac (as boto and keystoneclient do)."""
    params = dict(params, SignatureMethod="HmacSHA256")
    query = "&".join(urllib.parse.quote(k, safe="") + "=" + urllib.parse.quote(params[k], safe="-_~")
                     for k in sorted(params))
    digest = hmac.new(secret.encode(), f"{verb}\n{host}\n{path}\n{query}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def test_ec2_credentials_and_ec2tokens(osc, nimbus: Nimbus, ids):
    created = osc("ec2", "credentials", "create")
    assert created["user_id"] == ids["admin_user"]
    assert created["project_id"] == ids["admin_project"]
    access, secret = created["access"], created["secret"]
    assert access and secret

    listed = osc("ec2", "credentials", "list")
    assert [c["Secret"] for c in listed if c["Access"] == access] == [secret]
    assert osc("ec2", "credentials", "show", access)["secret"] == secret

    # A request signed with the secret, checked by /v3/ec2tokens as an EC2 API service would.
    params = {"Action": "DescribeInstances", "AWSAccessKeyId": access, "SignatureVersion": "2",
              "Timestamp": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "Version": "2016-11-15"}
    body = {"credentials": {"access": access, "host": "ec2.example.com:8788", "verb": "GET", "path": "/",
                            "params": params,
                            "signature": ec2_v2_signature(secret, "GET", "ec2.example.com:8788", "/", params)}}
    r = nimbus.http("POST", "/identity/v3/ec2tokens", token=nimbus.admin_token(), json=body)
    assert r.status_code == 200, r.text
    assert r.json()["token"]["user"]["id"] == ids["admin_user"]
    assert r.json()["token"]["project"]["id"] == ids["admin_project"]
    assert r.json()["token"]["methods"] == ["ec2credential"]
    issued = r.headers["X-Subject-Token"]
    assert nimbus.http("GET", "/identity/v3/auth/projects", token=issued).status_code == 200

    body["credentials"]["signature"] = ec2_v2_signature("not-the-secret", "GET", "ec2.example.com:8788", "/", params)
    r = nimbus.http("POST", "/identity/v3/ec2tokens", token=nimbus.admin_token(), json=body)
    assert r.status_code == 401, r.text

    osc("ec2", "credentials", "delete", access)
    assert all(c["Access"] != access for c in osc("ec2", "credentials", "list"))
    failed = osc("ec2", "credentials", "show", access, expect_fail=True)
    assert "404" in failed.stderr or "not found" in failed.stderr.lower(), failed.stderr


def test_application_credential_restricted_to_a_role(osc, nimbus: Nimbus, ids,
                                                     tmp_path: Path):
    name = unique("reader-cred")
    cred = osc("application", "credential", "create", name, "--role", "reader")
    assert [r["name"] for r in cred["Roles"]] == ["reader"]
    secret = cred["Secret"]
    assert secret

    env = appcred_env(nimbus, tmp_path / "reader.yaml", cred["ID"], secret)
    token = osc("token", "issue", cloud="appcred", env=env)
    assert token["project_id"] == ids["admin_project"]
    # Only the role the credential names: not admin, not member.
    assert token_roles(nimbus, token["id"]) == {"reader"}

    # So the admin user, through this credential, cannot create users.
    failed = osc("user", "create", unique("user"), cloud="appcred", env=env, expect_fail=True)
    assert "403" in failed.stderr, failed.stderr

    # A role the creator does not have cannot be delegated.
    role = osc("role", "create", unique("unheld"))
    failed = osc("application", "credential", "create", unique("bad"), "--role", role["name"],
                 expect_fail=True)
    assert failed.returncode != 0

    osc("application", "credential", "delete", cred["ID"])
    osc("role", "delete", role["id"])


# ---------------------------------------------------------------------------
# Changing one's own password
# ---------------------------------------------------------------------------


def test_user_password_set(osc, nimbus: Nimbus, tmp_path: Path):
    project = make_project(osc)
    user = make_user(osc, password="Old-Passw0rd")
    osc("role", "add", "--user", user["id"], "--project", project["id"], "member")

    old_env = nimbus.password_cloud(tmp_path / "old.yaml", user["name"], "Old-Passw0rd",
                                    project=project["name"])
    token = osc("token", "issue", cloud="test", env=old_env)
    assert token["user_id"] == user["id"] and token["project_id"] == project["id"]
    assert token_roles(nimbus, token["id"]) == {"member", "reader"}

    # A member is not an admin.
    failed = osc("user", "create", unique("user"), cloud="test", env=old_env,
                 expect_fail=True)
    assert "403" in failed.stderr, failed.stderr

    # The wrong original password is refused and changes nothing.
    failed = osc("user", "password", "set", "--password", "Whatever-1",
                 "--original-password", "not-my-password",
                 cloud="test", env=old_env, expect_fail=True)
    assert "401" in failed.stderr, failed.stderr

    osc("user", "password", "set", "--password", "New-Passw0rd",
        "--original-password", "Old-Passw0rd", cloud="test", env=old_env)

    new_env = nimbus.password_cloud(tmp_path / "new.yaml", user["name"], "New-Passw0rd",
                                    project=project["name"])
    token = osc("token", "issue", cloud="test", env=new_env)
    assert token["user_id"] == user["id"]

    failed = osc("token", "issue", cloud="test", env=old_env, expect_fail=True)
    assert "401" in failed.stderr, failed.stderr

    osc("user", "delete", user["id"])
    osc("project", "delete", project["id"])


# ---------------------------------------------------------------------------
# Unified limits
# ---------------------------------------------------------------------------


def test_registered_limit_and_limit_lifecycle(osc, nimbus: Nimbus, tmp_path: Path):
    image = osc("service", "show", "image")
    registered = osc("registered", "limit", "create", "--service", "image",
                     "--default-limit", "10", "image_count_total")
    assert registered["service_id"] == image["id"]
    assert registered["resource_name"] == "image_count_total"
    assert registered["default_limit"] == 10
    assert registered["region_id"] is None
    assert registered["description"] is None

    rows = osc("registered", "limit", "list", "--service", "image")
    row = by_name(rows, registered["id"], key="ID")
    assert row["Resource Name"] == "image_count_total" and row["Default Limit"] == 10
    assert osc("registered", "limit", "list", "--resource-name", "no-such-resource") == []
    shown = osc("registered", "limit", "show", registered["id"])
    assert shown["default_limit"] == 10 and shown["service_id"] == image["id"]
    updated = osc("registered", "limit", "set", registered["id"], "--default-limit", "20",
                  "--description", "images per project", fmt="json")
    assert updated["default_limit"] == 20 and updated["description"] == "images per project"

    # The same service and resource again is a duplicate.
    failed = osc("registered", "limit", "create", "--service", "image", "--default-limit", "5",
                 "image_count_total", expect_fail=True)
    assert "409" in failed.stderr, failed.stderr

    project = make_project(osc)
    limit = osc("limit", "create", "--project", project["id"], "--service", "image",
                "--resource-limit", "5", "image_count_total")
    assert limit["project_id"] == project["id"]
    assert limit["service_id"] == image["id"]
    assert limit["resource_name"] == "image_count_total"
    assert limit["resource_limit"] == 5
    assert limit["region_id"] is None

    # A resource with no registered limit cannot be limited.
    failed = osc("limit", "create", "--project", project["id"], "--service", "image",
                 "--resource-limit", "5", "image_size_total", expect_fail=True)
    assert "403" in failed.stderr, failed.stderr

    rows = osc("limit", "list", "--project", project["id"])
    assert [r["ID"] for r in rows] == [limit["id"]]
    assert rows[0]["Resource Limit"] == 5 and rows[0]["Project ID"] == project["id"]
    assert by_name(osc("limit", "list", "--service", "image", "--resource-name",
                       "image_count_total"), limit["id"], key="ID")
    shown = osc("limit", "show", limit["id"])
    assert shown["resource_limit"] == 5 and shown["project_id"] == project["id"]
    updated = osc("limit", "set", limit["id"], "--resource-limit", "7",
                  "--description", "seven", fmt="json")
    assert updated["resource_limit"] == 7 and updated["description"] == "seven"

    # A member of the project reads its own limit but creates none and sees no other's.
    user = make_user(osc, password="Lim1t-Passw0rd")
    osc("role", "add", "--user", user["id"], "--project", project["id"], "member")
    env = nimbus.password_cloud(tmp_path / "member.yaml", user["name"], "Lim1t-Passw0rd",
                                project=project["name"])
    own = osc("limit", "list", cloud="test", env=env)
    assert [r["ID"] for r in own] == [limit["id"]]
    assert osc("registered", "limit", "show", registered["id"], cloud="test", env=env)["id"] == registered["id"]
    failed = osc("registered", "limit", "create", "--service", "image", "--default-limit", "1",
                 "image_size_total", cloud="test", env=env, expect_fail=True)
    assert "403" in failed.stderr, failed.stderr

    # A registered limit with limits on it cannot be deleted.
    failed = osc("registered", "limit", "delete", registered["id"], expect_fail=True)
    assert "403" in failed.stderr, failed.stderr

    osc("limit", "delete", limit["id"])
    failed = osc("limit", "show", limit["id"], expect_fail=True)
    assert "Could not find limit" in failed.stderr, failed.stderr
    osc("registered", "limit", "delete", registered["id"])
    failed = osc("registered", "limit", "show", registered["id"], expect_fail=True)
    assert "Could not find registered limit" in failed.stderr, failed.stderr
    osc("user", "delete", user["id"])
    osc("project", "delete", project["id"])


def test_federation_configuration(osc, nimbus: Nimbus, tmp_path: Path):
    """`openstack identity provider`, `mapping`, `federation protocol` and `service provider`:
    the configuration OS-FEDERATION stores, as an operator scripts it."""
    idp, mapping, sp = unique("idp"), unique("map"), unique("sp")
    made = osc("identity", "provider", "create", "--remote-id", f"https://{idp}.example/idp", "--description", "ACME SSO", "--enable", idp)
    assert made["enabled"] is True and made["remote_ids"] == [f"https://{idp}.example/idp"], made
    assert osc("domain", "show", made["domain_id"])["enabled"] is True
    assert idp in [p["ID"] for p in osc("identity", "provider", "list")]
    osc("identity", "provider", "set", "--disable", idp)
    assert osc("identity", "provider", "show", idp)["enabled"] is False

    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps([{"local": [{"user": {"name": "{0}"}}], "remote": [{"type": "REMOTE_USER"}]}]))
    assert osc("mapping", "create", "--rules", str(rules), mapping)["id"] == mapping
    proto = osc("federation", "protocol", "create", "--identity-provider", idp, "--mapping", mapping, "saml2")
    assert proto["mapping"] == mapping and proto["identity_provider"] == idp, proto
    assert [p["id"] for p in osc("federation", "protocol", "list", "--identity-provider", idp)] == ["saml2"]

    created = osc("service", "provider", "create", "--auth-url", "https://sp.example/v3/auth", "--service-provider-url",
                  "https://sp.example/Shibboleth.sso/SAML2/ECP", sp)
    assert created["enabled"] is True and created["relay_state_prefix"] == "ss:mem:", created
    assert sp in [s["ID"] for s in osc("service", "provider", "list")]

    osc("federation", "protocol", "delete", "--identity-provider", idp, "saml2")
    osc("mapping", "delete", mapping)
    osc("identity", "provider", "delete", idp)
    osc("service", "provider", "delete", sp)
    assert idp not in [p["ID"] for p in osc("identity", "provider", "list")]


def test_endpoint_filter_by_project(osc, nimbus: Nimbus, tmp_path: Path):
    """`openstack endpoint add project` and `endpoint group add project`: a project with
    associations sees only those endpoints in its catalog; `endpoint list --project` and
    `endpoint group list --project` show them."""
    project = osc("project", "create", unique("epf"))
    password = "Pw-" + unique("x")
    user = osc("user", "create", unique("epfuser"), "--password", password)
    osc("role", "add", "--user", user["id"], "--project", project["id"], "member")
    env = nimbus.password_cloud(tmp_path / "epf.yaml", user["name"], password, project=project["name"])
    identity = [e for e in osc("endpoint", "list", "--service", "identity", "--interface", "public")][0]["ID"]

    osc("endpoint", "add", "project", identity, project["id"])
    assert [e["ID"] for e in osc("endpoint", "list", "--project", project["id"])] == [identity]
    catalog = osc("catalog", "list", cloud="test", env=env)
    assert [c["Type"] for c in catalog] == ["identity"], catalog

    group = osc("endpoint", "group", "create", unique("internal"), str(_filters_file(tmp_path)))
    osc("endpoint", "group", "add", "project", group["id"], project["id"])
    assert [g["ID"] for g in osc("endpoint", "group", "list", "--project", project["id"])] == [group["id"]]
    assert len(osc("catalog", "list", cloud="test", env=env)) > 1

    osc("endpoint", "group", "remove", "project", group["id"], project["id"])
    osc("endpoint", "remove", "project", identity, project["id"])
    assert osc("endpoint", "list", "--project", project["id"]) == []
    osc("endpoint", "group", "delete", group["id"])


def _filters_file(tmp_path: Path) -> Path:
    path = tmp_path / "filters.json"
    path.write_text(json.dumps({"interface": "internal"}))
    return path
