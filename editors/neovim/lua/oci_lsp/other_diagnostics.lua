-- Other tools' diagnostics in oci-lsp's code action requests, on Neovim 0.11 and later.
--
-- oci-lsp offers a verified fix on a diagnostic of another tool (ruff, mypy, Pyright; any
-- source) when textDocument/codeAction hands it over, as VS Code and Neovim 0.10 do with every
-- diagnostic under the cursor. Neovim 0.11's vim.lsp.buf.code_action() sends each server only
-- the diagnostics of its own namespaces, so oci-lsp would never see them. This adds to
-- oci-lsp's code action requests the diagnostics of every other namespace on the request's
-- lines: other servers' as they published them, and non-LSP ones (nvim-lint's) in LSP form.
local M = {}

local METHOD = "textDocument/codeAction"

local wrapped = {} -- client id -> true: each client's request is wrapped once

-- A vim.Diagnostic as LSP sent it, or built from it (columns are bytes: the client's
-- position encoding is what the server reads).
local function lsp_form(diagnostic, bufnr, encoding)
  local lsp = (diagnostic.user_data or {}).lsp
  if type(lsp) == "table" then
    return lsp
  end
  local function position(row, col)
    local ok, character = pcall(vim.lsp.util.character_offset, bufnr, row, col, encoding)
    return { line = row, character = ok and character or col }
  end
  local end_lnum = diagnostic.end_lnum or diagnostic.lnum
  return {
    range = {
      start = position(diagnostic.lnum, diagnostic.col),
      ["end"] = position(end_lnum, diagnostic.end_col or diagnostic.col),
    },
    message = diagnostic.message,
    severity = diagnostic.severity, -- vim.diagnostic.severity counts as LSP does, 1 = Error
    source = diagnostic.source,
    code = diagnostic.code,
  }
end

local function key(lsp)
  local start = (lsp.range or {}).start or {}
  return table.concat({
    tostring(start.line),
    tostring(start.character),
    tostring(lsp.source),
    tostring(lsp.code),
    tostring(lsp.message),
  }, "\0")
end

--- Adds to a codeAction request's context the diagnostics on its lines that are not the
--- client's own (those Neovim sent already), each once.
---@param client vim.lsp.Client
---@param params table lsp.CodeActionParams, changed in place
---@param bufnr integer|nil
function M.add(client, params, bufnr)
  local context, range = params.context, params.range
  if type(context) ~= "table" or type(range) ~= "table" then
    return
  end
  bufnr = (bufnr and bufnr ~= 0) and bufnr or vim.uri_to_bufnr(params.textDocument.uri)
  local own = {
    [vim.lsp.diagnostic.get_namespace(client.id, false)] = true,
    [vim.lsp.diagnostic.get_namespace(client.id, true)] = true,
  }
  local sent = type(context.diagnostics) == "table" and context.diagnostics or {}
  local seen = {}
  for _, lsp in ipairs(sent) do
    seen[key(lsp)] = true
  end
  local first, last = range.start.line, range["end"].line
  for _, diagnostic in ipairs(vim.diagnostic.get(bufnr)) do
    if not own[diagnostic.namespace] and first <= diagnostic.lnum and diagnostic.lnum <= last then
      local lsp = lsp_form(diagnostic, bufnr, client.offset_encoding)
      if not seen[key(lsp)] then
        seen[key(lsp)] = true
        table.insert(sent, lsp)
      end
    end
  end
  context.diagnostics = sent
end

--- Makes an oci-lsp client's code action requests carry the other tools' diagnostics.
--- Neovim 0.10 sends them itself; nothing is changed there.
---@param client vim.lsp.Client
function M.attach(client)
  if vim.fn.has("nvim-0.11") ~= 1 or wrapped[client.id] then
    return
  end
  wrapped[client.id] = true
  local request = client.request
  -- Called as a method (client:request(method, ...), what Neovim does) or, deprecated, as a
  -- field (client.request(method, ...)): the arguments go on to the original as they came.
  client.request = function(...)
    local method, params, bufnr
    if select(1, ...) == client then
      method, params, bufnr = select(2, ...), select(3, ...), select(5, ...)
    else
      method, params, bufnr = select(1, ...), select(2, ...), select(4, ...)
    end
    if method == METHOD and type(params) == "table" then
      M.add(client, params, bufnr)
    end
    return request(...)
  end
end

return M
