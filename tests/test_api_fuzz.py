"""/api/v1 fuzzed from its own OpenAPI document (Schemathesis) over real HTTP to the hub as `parkcard up` runs
it: no 500s, every response in the status codes, content types and schemas the document declares."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from api_kit import UpHub, api_key, cli

pytestmark = [pytest.mark.api, pytest.mark.broker]

EXAMPLES_MAX = 25       # per operation: enough to hit every parameter's edges, short enough for CI
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzzed_hub(tmp_path_factory):
    """A hub with one merchant and terminal, and a key holding every scope; yields (hub, secret)."""
    workdir = tmp_path_factory.mktemp("fuzz")
    db = str(workdir / "hub.db")
    for args in (("merchant", "add", "--id", "2", "--name", "Food court", "--commission-bps", "1200"),
                 ("terminal", "add", "--id", "12", "--merchant", "2", "--role", "pos", "--name", "Food 1")):
        assert cli(workdir, db, *args).returncode == 0
    secret = api_key(workdir, db, "fuzz", "fleet:read", "terminals:control", "merchants:write", "blacklist:write",
                     "settlement:close", "credits:write", "cards:read", "reports:read", "reports:z", "gates:read",
                     "cards:loss", "desk:replace")
    hub = UpHub(workdir, db).start()
    yield hub, secret
    assert hub.stop() == 0


def test_api_conforms_to_its_openapi_document(fuzzed_hub):
    hub, secret = fuzzed_hub
    base_url = hub.url.rsplit("/api/v1", 1)[0]
    schema = schemathesis.openapi.from_url(hub.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_MAX, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def conforms(case):
            case.call_and_validate(base_url=base_url, headers={"Authorization": "Bearer " + secret}, checks=CHECKS)
        conforms()
