"""Application credentials with access rules, through the unmodified `openstack` CLI.

A credential limited to one request (`GET /v2.1/servers/detail` on compute, what
`openstack server list` sends) makes that call and is refused every other one, on
identity, image, compute, network and placement alike, as keystonemiddleware
refuses them in each service; `openstack access rule list/show/delete` manage the
rules.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Nimbus, unique


def appcred_env(nimbus: Nimbus, path: Path, cred_id: str, secret: str) -> dict[str, str]:
    nimbus.write_clouds_yaml(path, {
        "appcred": {
            "auth_type": "v3applicationcredential",
            "auth": {"application_credential_id": cred_id, "application_credential_secret": secret},
        }
    })
    return {"OS_CLIENT_CONFIG_FILE": str(path)}


def test_access_rules_limit_every_service(osc, nimbus: Nimbus, tmp_path: Path):
    name = unique("ruled")
    rule = {"service": "compute", "method": "GET", "path": "/v2.1/servers/detail"}
    cred = osc("application", "credential", "create", name, "--secret", "ruled-secret-1",
               "--access-rules", json.dumps([rule]))
    rules = cred["Access Rules"]
    assert [(r["service"], r["method"], r["path"]) for r in rules] == [("compute", "GET", "/v2.1/servers/detail")]
    rule_id = rules[0]["id"]

    env = appcred_env(nimbus, tmp_path / "ruled.yaml", cred["ID"], "ruled-secret-1")
    # The one allowed call, through the CLI.
    assert isinstance(osc("server", "list", "--no-name-lookup", cloud="appcred", env=env), list)

    # Every other call is refused with 401, on each service.
    for args in (("flavor", "list"), ("server", "create", "--flavor", "m1.tiny", "--image", "x", unique("no")),
                 ("image", "list"), ("network", "list"), ("project", "list"), ("user", "show", "admin")):
        failed = osc(*args, cloud="appcred", env=env, expect_fail=True)
        assert "401" in failed.stderr, (args, failed.stderr)

    # The token carries the rules, and placement refuses it too.
    token = osc("token", "issue", cloud="appcred", env=env)["id"]
    body = nimbus.http("GET", "/identity/v3/auth/tokens", token=token, headers={"X-Subject-Token": token})
    assert body.status_code == 200, body.text
    assert body.json()["token"]["application_credential"]["access_rules"] == [dict(rule, id=rule_id)]
    for path in ("/placement/resource_providers", "/compute/v2.1/servers", "/networking/v2.0/ports"):
        refused = nimbus.http("GET", path, token=token)
        assert refused.status_code == 401, (path, refused.text)
    assert nimbus.http("GET", "/compute/v2.1/servers/detail", token=token).status_code == 200

    # `openstack access rule …` for the credential's owner.
    listed = osc("access", "rule", "list")
    assert rule_id in {r["ID"] for r in listed}
    shown = osc("access", "rule", "show", rule_id)
    shown = {k.lower(): v for k, v in shown.items()}
    assert (shown["service"], shown["method"], shown["path"]) == ("compute", "GET", "/v2.1/servers/detail")
    in_use = osc("access", "rule", "delete", rule_id, expect_fail=True)
    assert "403" in in_use.stderr or "in use" in in_use.stderr, in_use.stderr

    osc("application", "credential", "delete", name)
    osc("access", "rule", "delete", rule_id)
    assert rule_id not in {r["ID"] for r in osc("access", "rule", "list")}
    gone = osc("access", "rule", "show", rule_id, expect_fail=True)
    assert "404" in gone.stderr or "No access rule" in gone.stderr or "Could not find" in gone.stderr, gone.stderr
