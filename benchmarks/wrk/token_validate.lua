-- GET /identity/v3/auth/tokens: validate a pre-issued token with itself.
-- NIMBUS_TOKEN: the token (sent as both X-Auth-Token and X-Subject-Token).
local token = os.getenv("NIMBUS_TOKEN") or error("NIMBUS_TOKEN is not set")

wrk.method = "GET"
wrk.headers["Accept"] = "application/json"
wrk.headers["X-Auth-Token"] = token
wrk.headers["X-Subject-Token"] = token
