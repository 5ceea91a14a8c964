-- Finding the oci-lsp client of a buffer, and talking to it the same way on Neovim 0.10 and
-- 0.11 (0.11 made the client's functions methods and deprecated the `client.request` form).
local M = {}

local has_011 = vim.fn.has("nvim-0.11") == 1

local SERVER_COMMAND = "oci.status" -- a command only oci-lsp offers

--- Whether the client is an oci-lsp one, whatever the user named it (setup(),
--- vim.lsp.config, nvim-lspconfig): by what the server offers, or by our name while it starts.
---@param client vim.lsp.Client
---@return boolean
function M.is_ours(client)
  local capabilities = client.server_capabilities or {}
  local provider = capabilities.executeCommandProvider
  if type(provider) == "table" and vim.list_contains(provider.commands or {}, SERVER_COMMAND) then
    return true
  end
  return client.name == require("oci_lsp.config").name
end

---@return vim.lsp.Client[]
function M.all()
  return vim.tbl_filter(M.is_ours, vim.lsp.get_clients())
end

---@param bufnr integer
---@return vim.lsp.Client|nil
function M.for_buffer(bufnr)
  for _, client in ipairs(vim.lsp.get_clients({ bufnr = bufnr })) do
    if M.is_ours(client) then
      return client
    end
  end
  return nil
end

-- Why a buffer has no client: the likely cause first, so the user knows what to change.
local function why_none(bufnr)
  local oci = require("oci_lsp")
  local options = oci.options()
  local name = vim.api.nvim_buf_get_name(bufnr)
  if not oci.is_configured() and #M.all() == 0 then
    return "require('oci_lsp').setup() was not called"
  end
  if name == "" or vim.bo[bufnr].buftype ~= "" then
    return "this buffer is not a file"
  end
  if not vim.list_contains(options.filetypes, vim.bo[bufnr].filetype) then
    return ("it starts on %s buffers, this one is '%s'"):format(
      table.concat(options.filetypes, "/"),
      vim.bo[bufnr].filetype
    )
  end
  if vim.fn.executable(options.cmd[1]) ~= 1 then
    return ("`%s` is not executable (see :checkhealth oci_lsp)"):format(options.cmd[1])
  end
  return "the server did not start or exited (see :checkhealth oci_lsp and :LspLog)"
end

--- The buffer's client, or nil after telling the user why there is none.
---@param bufnr integer
---@return vim.lsp.Client|nil
function M.get(bufnr)
  local client = M.for_buffer(bufnr)
  if client == nil then
    vim.notify(
      "oci-lsp: no oci-lsp client is attached to this buffer: " .. why_none(bufnr),
      vim.log.levels.WARN
    )
    return nil
  end
  if not client.initialized then
    vim.notify("oci-lsp: the server is still starting; try again in a moment", vim.log.levels.WARN)
    return nil
  end
  return client
end

-- A client function called as 0.11's method (`client:request(...)`) or as 0.10's field
-- (`client.request(...)`), whichever this Neovim has.
local function call(client, name, ...)
  if has_011 then
    return client[name](client, ...)
  end
  return client[name](...)
end

---@param client vim.lsp.Client
---@param method string
---@param params table|nil
---@param handler fun(err: table|nil, result: any, ctx: table)
---@param bufnr integer|nil
function M.request(client, method, params, handler, bufnr)
  return call(client, "request", method, params, handler, bufnr)
end

---@return {err: table|nil, result: any}|nil answer, string|nil error (timeout)
function M.request_sync(client, method, params, timeout_ms, bufnr)
  return call(client, "request_sync", method, params, timeout_ms, bufnr)
end

--- workspace/executeCommand with oci-lsp's one argument object.
---@param client vim.lsp.Client
---@param command string
---@param argument table
---@param bufnr integer|nil
---@param on_result fun(result: any) called only on success; an error is reported here
function M.execute(client, command, argument, bufnr, on_result)
  local params = { command = command, arguments = { argument } }
  return M.request(client, "workspace/executeCommand", params, function(err, result)
    if err then
      local why = err.message or vim.inspect(err)
      vim.notify(("oci-lsp: %s failed: %s"):format(command, why), vim.log.levels.ERROR)
      return
    end
    on_result(result)
  end, bufnr)
end

--- Give a running client new settings: what it answers for workspace/configuration, then the
--- notification that makes the server ask again.
---@param client vim.lsp.Client
---@param settings table the `settings` of the start configuration ({ oci = ... })
function M.update_settings(client, settings)
  client.settings = settings
  client.config.settings = settings -- what 0.10 reads
  call(client, "notify", "workspace/didChangeConfiguration", { settings = settings })
end

--- A JSON null (vim.NIL) read as nil, so that answers can be tested with `or`.
function M.value(x)
  if x == vim.NIL then
    return nil
  end
  return x
end

return M
