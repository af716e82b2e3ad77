"""The OpenStack reference routes Nimbus serves match docs/api-routes.md.

`scripts/api-routes check` probes every reference route of Nova, Glance, Keystone, Neutron and
Placement without a token (the router answers 404 for a route it lacks, the token check 401 for
one it has) and renders the result as docs/api-routes.md. A route that goes missing, or a new
route whose doc was not regenerated, fails here; the doc lists the missing routes that
python-openstackclient, openstacksdk's cloud layer or Ansible's openstack.cloud modules call.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_served_routes_match_the_doc(nimbus):
    if nimbus.backend != "sqlite":
        pytest.skip("one backend is enough: routing does not touch the database")
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "api-routes"), "check", "--url", nimbus.base_url],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr
