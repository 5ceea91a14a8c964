-- Our client's $/progress in the message area. Neovim already keeps it for vim.lsp.status()
-- and fires LspProgress; this only shows it, one line replacing the last, and out of the
-- message history (a fix reports every round and candidate: that would flood :messages).
local M = {}

local group = vim.api.nvim_create_augroup("oci_lsp_progress", { clear = true })

-- Only `begin` carries the title; reports and the end are known by their token.
local titles = {}

local function one_line(text)
  return (text:gsub("%s*\n%s*", " ⏎ "))
end

local function show(ev)
  local clients = require("oci_lsp.client")
  local data = ev.data or {}
  local client = vim.lsp.get_client_by_id(data.client_id)
  local params = data.params or {}
  local value = params.value
  if client == nil or not clients.is_ours(client) or type(value) ~= "table" then
    return
  end
  local key = ("%d:%s"):format(client.id, tostring(params.token))
  if value.kind == "begin" then
    titles[key] = value.title
  end
  local title = titles[key] or "working"
  if value.kind == "end" then
    titles[key] = nil
  end
  local text = "oci-lsp: " .. title
  local message = clients.value(value.message)
  if message and message ~= "" then
    text = text .. ": " .. message
  elseif value.kind == "end" then
    text = text .. ": done"
  end
  local percentage = clients.value(value.percentage)
  if percentage and value.kind ~= "end" then
    text = ("%s (%d%%)"):format(text, percentage)
  end
  -- Longer than the message area would ask for "Press ENTER"; cut it instead.
  text = one_line(text)
  local room = math.max(vim.v.echospace, 10)
  if vim.fn.strdisplaywidth(text) > room then
    text = vim.fn.strcharpart(text, 0, room - 1) .. "…"
  end
  vim.api.nvim_echo({ { text } }, false, {})
end

--- Show the progress (true) or leave it to another plugin, e.g. fidget.nvim (false).
---@param enabled boolean
function M.enable(enabled)
  vim.api.nvim_clear_autocmds({ group = group })
  if enabled then
    vim.api.nvim_create_autocmd("LspProgress", { group = group, callback = show })
  end
end

return M
