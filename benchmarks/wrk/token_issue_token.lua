-- POST /identity/v3/auth/tokens with the "token" method: exchange a
-- pre-issued token for a new project-scoped one.
-- NIMBUS_TOKEN: the token to exchange; NIMBUS_PROJECT_ID: the project.
local token = os.getenv("NIMBUS_TOKEN") or error("NIMBUS_TOKEN is not set")
local project = os.getenv("NIMBUS_PROJECT_ID") or error("NIMBUS_PROJECT_ID is not set")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
wrk.body = string.format(
  '{"auth":{"identity":{"methods":["token"],"token":{"id":"%s"}},' ..
  '"scope":{"project":{"id":"%s"}}}}', token, project)
