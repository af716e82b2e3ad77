"""Negative cases of the Identity API over raw HTTP.

Authentication and authorization failures, token revocation, and bad input:
each must get the right 4xx status with the Keystone error body
{"error": {"code": N, "title": "...", "message": "..."}}, and nothing may
ever answer 5xx.
"""

from __future__ import annotations

import json
import random

import pytest
import requests

from conftest import Nimbus, unique

V3 = "/identity/v3"


def assert_error(r: requests.Response, code: int) -> dict:
    """The response has status `code` and a Keystone error body."""
    assert r.status_code == code, f"{r.request.method} {r.url}: {r.status_code} {r.text[:500]}"
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == code, body
    assert isinstance(error["title"], str) and error["title"], body
    assert isinstance(error["message"], str) and error["message"], body
    return error


def password_auth(name: str, password: str, domain: str = "Default",
                  project: str | None = None) -> dict:
    auth: dict = {
        "identity": {
            "methods": ["password"],
            "password": {"user": {"name": name, "domain": {"name": domain},
                                  "password": password}},
        }
    }
    if project:
        auth["scope"] = {"project": {"name": project, "domain": {"name": domain}}}
    return {"auth": auth}


def self_validate(nimbus: Nimbus, token: str) -> requests.Response:
    """Any valid token may validate itself."""
    return nimbus.http("GET", f"{V3}/auth/tokens", token=token,
                       headers={"X-Subject-Token": token})


@pytest.fixture
def member_setup(nimbus: Nimbus, admin_token: str, ids):
    """A project, and a user with only the member role on it."""
    def create(kind: str, body: dict) -> dict:
        r = nimbus.http("POST", f"{V3}/{kind}s", token=admin_token, json={kind: body})
        assert r.status_code == 201, r.text
        return r.json()[kind]

    project = create("project", {"name": unique("proj"), "domain_id": "default"})
    password = "Member-" + unique("pw")
    user = create("user", {"name": unique("member"), "domain_id": "default",
                           "password": password})
    r = nimbus.http("PUT", f"{V3}/projects/{project['id']}/users/{user['id']}"
                    f"/roles/{ids['member_role']}", token=admin_token)
    assert r.status_code == 204, r.text
    yield {"project": project, "user": user, "password": password}
    nimbus.http("DELETE", f"{V3}/users/{user['id']}", token=nimbus.admin_token())
    nimbus.http("DELETE", f"{V3}/projects/{project['id']}", token=nimbus.admin_token())


# ---------------------------------------------------------------------------
# Authentication
# ---------------------------------------------------------------------------


def test_wrong_password_is_401(nimbus: Nimbus):
    r = nimbus.http("POST", f"{V3}/auth/tokens",
                    json=password_auth("admin", "wrong-password", project="admin"))
    assert_error(r, 401)
    assert "X-Subject-Token" not in r.headers


def test_unknown_user_is_401_like_a_wrong_password(nimbus: Nimbus):
    r = nimbus.http("POST", f"{V3}/auth/tokens",
                    json=password_auth(unique("nobody"), "whatever"))
    assert_error(r, 401)


def test_right_password_is_201_with_subject_token(nimbus: Nimbus, ids):
    r = nimbus.http("POST", f"{V3}/auth/tokens",
                    json=password_auth("admin", nimbus.admin_password, project="admin"))
    assert r.status_code == 201, r.text
    assert r.headers["X-Subject-Token"]
    token = r.json()["token"]
    assert token["user"]["id"] == ids["admin_user"]
    assert token["project"]["id"] == ids["admin_project"]
    assert token["project"]["domain"]["id"] == "default"
    assert any(s["type"] == "identity" for s in token["catalog"])
    assert {"expires_at", "issued_at", "methods", "roles"} <= set(token)


def test_unauthenticated_list_users_is_401(nimbus: Nimbus):
    assert_error(nimbus.http("GET", f"{V3}/users"), 401)


def test_garbage_token_is_401(nimbus: Nimbus):
    assert_error(nimbus.http("GET", f"{V3}/users", token="not-a-token"), 401)
    assert_error(nimbus.http("GET", f"{V3}/users", token="gAAAAA" + "A" * 180), 401)


# ---------------------------------------------------------------------------
# Authorization
# ---------------------------------------------------------------------------


def test_member_cannot_create_users_but_admin_can(nimbus: Nimbus, admin_token: str,
                                                  member_setup):
    token, body = nimbus.issue_token(member_setup["user"]["name"], member_setup["password"],
                                     project=member_setup["project"]["name"])
    assert {r["name"] for r in body["token"]["roles"]} == {"member", "reader"}

    new_user = {"user": {"name": unique("wannabe"), "domain_id": "default"}}
    assert_error(nimbus.http("POST", f"{V3}/users", token=token, json=new_user), 403)

    r = nimbus.http("POST", f"{V3}/users", token=admin_token, json=new_user)
    assert r.status_code == 201, r.text
    created = r.json()["user"]
    assert created["name"] == new_user["user"]["name"]
    assert created["domain_id"] == "default"
    assert created["enabled"] is True
    assert created["links"]["self"].endswith(f"/v3/users/{created['id']}")
    assert "password" not in created
    r = nimbus.http("DELETE", f"{V3}/users/{created['id']}", token=admin_token)
    assert r.status_code == 204, r.text


# ---------------------------------------------------------------------------
# Revocation
# ---------------------------------------------------------------------------


def test_deleted_token_is_401_on_next_use(nimbus: Nimbus, admin_token: str):
    token, _ = nimbus.issue_token("admin", nimbus.admin_password, project="admin")
    r = nimbus.http("GET", f"{V3}/users", token=token)
    assert r.status_code == 200, r.text
    assert self_validate(nimbus, token).status_code == 200

    r = nimbus.http("DELETE", f"{V3}/auth/tokens", token=admin_token,
                    headers={"X-Subject-Token": token})
    assert r.status_code == 204, r.text

    assert_error(nimbus.http("GET", f"{V3}/users", token=token), 401)
    # Validating it (with a good token) says it does not exist.
    assert_error(nimbus.http("GET", f"{V3}/auth/tokens", token=admin_token,
                             headers={"X-Subject-Token": token}), 404)
    # The token that revoked it is unaffected.
    assert nimbus.http("GET", f"{V3}/users", token=admin_token).status_code == 200


def test_removing_a_role_revokes_tokens_at_once(nimbus: Nimbus, admin_token: str, ids,
                                               member_setup):
    user, project = member_setup["user"], member_setup["project"]
    token, _ = nimbus.issue_token(user["name"], member_setup["password"],
                                  project=project["name"])
    assert self_validate(nimbus, token).status_code == 200

    r = nimbus.http("DELETE", f"{V3}/projects/{project['id']}/users/{user['id']}"
                    f"/roles/{ids['member_role']}", token=admin_token)
    assert r.status_code == 204, r.text

    assert_error(self_validate(nimbus, token), 401)
    # Nor can a new token be scoped to the project.
    r = nimbus.http("POST", f"{V3}/auth/tokens",
                    json=password_auth(user["name"], member_setup["password"],
                                       project=project["name"]))
    assert_error(r, 401)


# ---------------------------------------------------------------------------
# Missing things
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("collection", ["users", "projects", "domains", "groups", "roles",
                                        "regions", "services", "endpoints"])
def test_missing_resource_is_404(nimbus: Nimbus, admin_token: str, collection: str):
    assert_error(nimbus.http("GET", f"{V3}/{collection}/does-not-exist", token=admin_token),
                 404)


def test_removing_a_missing_assignment_is_404(nimbus: Nimbus, admin_token: str, ids,
                                              member_setup):
    user, project = member_setup["user"], member_setup["project"]
    path = f"{V3}/projects/{project['id']}/users/{user['id']}/roles/{ids['admin_role']}"
    assert_error(nimbus.http("GET", path, token=admin_token), 404)
    assert_error(nimbus.http("DELETE", path, token=admin_token), 404)
    # The member assignment it does have is there.
    member = path.replace(ids["admin_role"], ids["member_role"])
    assert nimbus.http("GET", member, token=admin_token).status_code == 204


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


def test_malformed_json_is_400(nimbus: Nimbus, admin_token: str):
    headers = {"Content-Type": "application/json"}
    assert_error(nimbus.http("POST", f"{V3}/users", token=admin_token, headers=headers,
                             data=b'{"user": {"name": '), 400)
    assert_error(nimbus.http("POST", f"{V3}/auth/tokens", headers=headers,
                             data=b"{not json at all"), 400)


@pytest.mark.parametrize("body", [
    {"user": {"name": 5}},
    {"user": {"name": "x", "enabled": "yes"}},
    {"user": "not an object"},
    {"user": {"name": ""}},
    {},
])
def test_wrong_field_types_are_400(nimbus: Nimbus, admin_token: str, body):
    assert_error(nimbus.http("POST", f"{V3}/users", token=admin_token, json=body), 400)


@pytest.mark.parametrize("body", [
    {"auth": {"identity": {"methods": "password"}}},
    {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": 7}}}}},
    {"auth": []},
])
def test_bad_auth_requests_are_400(nimbus: Nimbus, body):
    assert_error(nimbus.http("POST", f"{V3}/auth/tokens", json=body), 400)


def test_two_mib_body_is_413(nimbus: Nimbus, admin_token: str):
    big = json.dumps({"user": {"name": "big", "description": "x" * (2 * 1024 * 1024)}})
    headers = {"Content-Type": "application/json"}
    assert_error(nimbus.http("POST", f"{V3}/users", token=admin_token, headers=headers,
                             data=big.encode()), 413)
    assert_error(nimbus.http("POST", f"{V3}/auth/tokens", headers=headers,
                             data=big.encode()), 413)
    # The server is fine afterwards.
    assert nimbus.http("GET", V3).status_code == 200


# ---------------------------------------------------------------------------
# A bounded fuzz-ish loop: many routes, methods and bodies, never a 5xx
# ---------------------------------------------------------------------------

GARBAGE_BODIES: list[bytes | None] = [
    None,
    b"",
    b"{}",
    b"[]",
    b"null",
    b"42",
    b'"a string"',
    b"{",
    b"\x00\xff\xfe garbage \x80",
    b'{"user": []}',
    b'{"project": {"name": {"nested": true}}}',
    b'{"auth": {"identity": {"methods": ["token"], "token": {"id": 5}}}}',
    b'{"auth": {"identity": {"methods": ["nope"]}}}',
    b'{"role": {"name": null}}',
    b'{"group": {"name": "' + "\u00e9\u6f22\U0001F600".encode() + b'"}}',
    b'{"domain": {"name": 1e400}}',
    b'{"region": {"id": 123456789012345678901234567890}}',
    b"[" * 5000 + b"]" * 5000,
    b'{"a":' * 3000 + b"1" + b"}" * 3000,
    b'{"user": {"name": "x", "name": "y"}}',
]

BAD_IDS = [
    "does-not-exist",
    "0" * 32,
    "%00",
    "..%2F..%2Fetc%2Fpasswd",
    "a" * 4096,
    "%E2%98%83",
    "'; DROP TABLE users; --",
]

COLLECTIONS = ["users", "projects", "domains", "groups", "roles", "regions", "services",
               "endpoints", "credentials", "policies"]


def fuzz_cases(ids: dict[str, str], rng: random.Random) -> list[tuple[str, str, bytes | None]]:
    real = {"users": ids["admin_user"], "projects": ids["admin_project"],
            "roles": ids["member_role"], "domains": "default", "regions": "RegionOne"}
    paths = [
        "/identity", f"{V3}", f"{V3}/", f"{V3}/auth/tokens", f"{V3}/auth/catalog",
        f"{V3}/auth/projects", f"{V3}/auth/domains", f"{V3}/auth/system",
        f"{V3}/role_assignments", f"{V3}/role_assignments?effective&include_names=maybe",
        f"{V3}/role_inferences", f"{V3}/users?limit=-1", f"{V3}/users?limit=abc&marker=zz",
        f"{V3}/projects?enabled=perhaps", f"{V3}/no-such-collection", f"{V3}/OS-NOPE/x",
        "/identity/v2.0/tokens", "/identity/v4", "/no-such-service", "/",
        f"{V3}/users/{ids['admin_user']}/password",
        f"{V3}/users/{ids['admin_user']}/application_credentials",
        f"{V3}/users/{ids['admin_user']}/groups", f"{V3}/users/{ids['admin_user']}/projects",
        f"{V3}/roles/{ids['admin_role']}/implies/{ids['member_role']}",
        f"{V3}/roles/{ids['admin_role']}/implies",
    ]
    for c in COLLECTIONS:
        paths.append(f"{V3}/{c}")
        paths.append(f"{V3}/{c}/{rng.choice(BAD_IDS)}")
    for c, real_id in real.items():
        paths.append(f"{V3}/{c}/{real_id}")
    for _ in range(6):
        paths.append(f"{V3}/projects/{rng.choice(BAD_IDS)}/users/{rng.choice(BAD_IDS)}"
                     f"/roles/{rng.choice(BAD_IDS)}")
        paths.append(f"{V3}/domains/{rng.choice(BAD_IDS)}/groups/{ids['admin_user']}"
                     f"/roles/{ids['member_role']}")

    cases = []
    for _ in range(110):
        path = rng.choice(paths)
        method = rng.choice(["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD"])
        # Only read what the other tests rely on: never change or delete it.
        if method in ("DELETE", "PUT", "PATCH") and any(v in path for v in real.values()):
            method = "GET"
        body = rng.choice(GARBAGE_BODIES) if method in ("POST", "PATCH", "PUT") else None
        cases.append((method, path, body))
    return cases


def test_fuzz_never_5xx(nimbus: Nimbus, admin_token: str, ids):
    rng = random.Random(20261126)
    failures = []
    seen = set()
    for i, (method, path, body) in enumerate(fuzz_cases(ids, rng)):
        authed = i % 3 != 0  # a third of them without a token
        headers = {"Content-Type": rng.choice(
            ["application/json", "text/plain", "application/x-www-form-urlencoded"])}
        try:
            r = nimbus.http(method, path, token=admin_token if authed else None,
                            headers=headers, data=body)
        except requests.RequestException as e:
            failures.append(f"{method} {path[:80]} body={body!r:.60}: {e}")
            continue
        seen.add(r.status_code)
        if r.status_code >= 500:
            failures.append(f"{method} {path[:80]} body={body!r:.60} token={authed}: "
                            f"{r.status_code} {r.text[:200]}")
    assert not failures, "\n".join(failures)
    assert any(400 <= s < 500 for s in seen), seen
    # Still alive and still serving.
    assert nimbus.is_running()
    assert nimbus.http("GET", V3).status_code == 200
    assert nimbus.http("GET", f"{V3}/users", token=nimbus.admin_token()).status_code == 200
