-- The options of setup(), and the start configuration they turn into.
--
-- Settings go to the server exactly as the user wrote them: a default sent from here would
-- rank above the workspace's `[tool.oci-lsp]` (initializationOptions win over pyproject.toml),
-- so the server's own defaults are the only defaults.
local M = {}

M.defaults = {
  cmd = { "oci-lsp" },
  settings = {},
  root_markers = { "pyproject.toml", ".git" },
  filetypes = { "python" },
  on_attach = nil,
  capabilities = nil,
  progress = true,
  autostart = true,
}

-- The client's name: also what `vim.lsp.config("oci_lsp", ...)` users call it.
M.name = "oci_lsp"

local types = {
  cmd = "table",
  settings = "table",
  root_markers = "table",
  filetypes = "table",
  on_attach = "function",
  capabilities = "table",
  progress = "boolean",
  autostart = "boolean",
}

-- Keys that belong in `settings`, caught at the top level where they would be lost silently.
local setting_keys = {
  model = true,
  backend = true,
  device = true,
  computeType = true,
  openai = true,
  tests = true,
  refine = true,
  generation = true,
  tools = true,
}

--- The options with defaults filled in; a wrong type is an error, an unknown key a warning.
---@param opts table|nil
---@return table
function M.resolve(opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    error("oci_lsp.setup: expected a table of options, got " .. type(opts), 3)
  end
  for key, value in pairs(opts) do
    local expected = types[key]
    if expected == nil then
      local hint = setting_keys[key] and (" (did you mean settings.%s?)"):format(key) or ""
      vim.notify(("oci_lsp.setup: unknown option `%s`%s"):format(key, hint), vim.log.levels.WARN)
    elseif type(value) ~= expected then
      error(("oci_lsp.setup: `%s` must be a %s, got %s"):format(key, expected, type(value)), 3)
    end
  end
  local resolved = vim.tbl_extend("force", vim.deepcopy(M.defaults), opts)
  if #resolved.cmd == 0 then
    error("oci_lsp.setup: `cmd` must name the server's executable", 3)
  end
  return resolved
end

-- vim.json encodes an empty Lua table as `[]`; the tables of the settings object are objects
-- (the argv lists are never empty), so say so for the empty ones. The one list that may be
-- empty is `tools.enabled` (no tool verifies): it stays a list.
local LISTS = { ["tools.enabled"] = true }

local function as_objects(value, key)
  if type(value) ~= "table" then
    return value
  end
  if next(value) == nil then
    return LISTS[key] and value or vim.empty_dict()
  end
  local out = {}
  for name, item in pairs(value) do
    local dotted = type(name) == "string" and (key and (key .. "." .. name) or name) or key
    out[name] = as_objects(item, dotted)
  end
  return out
end

--- What `vim.lsp.start` (or `vim.lsp.config`) needs, without the root: that is per buffer.
---@param options table resolved options
---@param commands table<string, function> client-side commands
---@return table
function M.start_config(options, commands)
  local settings = as_objects(options.settings)
  local init_options = vim.tbl_extend("force", vim.deepcopy(settings), {
    -- A client-side option the server takes out before reading the rest as settings: this
    -- client can ask for a line of guidance (oci.fixWithInstruction).
    promptForInstruction = true,
  })
  return {
    name = M.name,
    cmd = vim.deepcopy(options.cmd),
    init_options = init_options,
    -- Answers workspace/configuration for the section "oci"; only settings keys go here, the
    -- server warns about any other key.
    settings = { oci = settings },
    commands = commands,
    capabilities = options.capabilities,
    on_attach = options.on_attach,
  }
end

return M
