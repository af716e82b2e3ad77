-- POST /identity/v3/auth/tokens with the "password" method (a bcrypt check
-- per request), scoped to a project.
-- NIMBUS_USER, NIMBUS_PASSWORD: a user of domain Default;
-- NIMBUS_PROJECT_ID: the project to scope to.
local user = os.getenv("NIMBUS_USER") or error("NIMBUS_USER is not set")
local password = os.getenv("NIMBUS_PASSWORD") or error("NIMBUS_PASSWORD is not set")
local project = os.getenv("NIMBUS_PROJECT_ID") or error("NIMBUS_PROJECT_ID is not set")

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
wrk.body = '{"auth":{"identity":{"methods":["password"],"password":{"user":{' ..
  '"name":' .. json_string(user) .. ',"domain":{"id":"default"},' ..
  '"password":' .. json_string(password) .. '}}},' ..
  '"scope":{"project":{"id":' .. json_string(project) .. '}}}}'
