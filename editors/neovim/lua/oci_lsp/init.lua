-- oci-lsp for Neovim: starts the server on Python buffers and adds the commands that need the
-- editor (asking for an instruction, picking a failing test). See :help oci-lsp.
local config = require("oci_lsp.config")
local commands = require("oci_lsp.commands")

local M = {}

local state = {
  options = nil, -- set by setup()
}

--- The client-side commands, for users who start the server themselves (vim.lsp.config,
--- nvim-lspconfig): pass them as the `commands` of that configuration.
M.commands = commands.client

--- A complete configuration for vim.lsp.config() / vim.lsp.start() / lspconfig: cmd,
--- init_options, settings, commands, filetypes and root_markers, from the same options as
--- setup(). vim.lsp.start() needs a root_dir added.
---@param opts table|nil
---@return table
function M.lsp_config(opts)
  local options = config.resolve(opts)
  local start = config.start_config(options, M.commands)
  start.filetypes = vim.deepcopy(options.filetypes)
  start.root_markers = vim.deepcopy(options.root_markers)
  return start
end

---@return boolean
function M.is_configured()
  return state.options ~= nil
end

--- The options in force (the defaults before setup()).
---@return table
function M.options()
  return state.options or config.resolve({})
end

--- The root of a file in a project without markers: the working directory when the file is
--- inside it (opening tests/test_x.py first must not make tests/ the root), else its folder.
---@param file string
---@return string
function M.fallback_root(file)
  local cwd = vim.fs.normalize(vim.fn.getcwd())
  local path = vim.fs.normalize(vim.fn.fnamemodify(file, ":p"))
  if path:sub(1, #cwd + 1) == cwd .. "/" then
    return cwd
  end
  return vim.fs.dirname(path)
end

--- Start (or reuse: one client per root) the server for a buffer.
---@param bufnr integer|nil
---@return integer|nil client id
function M.start(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local options = M.options()
  local file = vim.api.nvim_buf_get_name(bufnr)
  -- Scratch buffers and the like have no file whose tests could run.
  if file == "" or vim.bo[bufnr].buftype ~= "" then
    return nil
  end
  -- Said once, instead of a spawn error on every Python buffer opened.
  if vim.fn.executable(options.cmd[1]) ~= 1 then
    local message = "oci-lsp: `%s` is not executable: no server (see :checkhealth oci_lsp)"
    vim.notify_once(message:format(options.cmd[1]), vim.log.levels.WARN)
    return nil
  end
  local start = config.start_config(options, M.commands)
  start.root_dir = vim.fs.root(bufnr, options.root_markers) or M.fallback_root(file)
  return vim.lsp.start(start, { bufnr = bufnr })
end

--- Configure, define the commands and (with autostart) start on the configured filetypes.
--- Calling it again replaces the previous configuration.
---@param opts table|nil
function M.setup(opts)
  state.options = config.resolve(opts)
  -- Called again (a reloaded config): running servers take the new settings now. Settings
  -- removed since stay in their initializationOptions until the server restarts.
  local settings = config.start_config(state.options, M.commands).settings
  for _, client in ipairs(require("oci_lsp.client").all()) do
    require("oci_lsp.client").update_settings(client, settings)
  end
  commands.create_user_commands()
  require("oci_lsp.progress").enable(state.options.progress)
  local group = vim.api.nvim_create_augroup("oci_lsp", { clear = true })
  -- However the client was started (here, vim.lsp.config, lspconfig): its code action
  -- requests carry the other tools' diagnostics, for the fixes of those.
  vim.api.nvim_create_autocmd("LspAttach", {
    group = group,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and require("oci_lsp.client").is_ours(client) then
        require("oci_lsp.other_diagnostics").attach(client)
      end
    end,
  })
  if not state.options.autostart then
    return
  end
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = state.options.filetypes,
    callback = function(args)
      M.start(args.buf)
    end,
  })
  -- Buffers opened before setup() (a lazy-loading plugin manager loads it on FileType).
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr)
      and vim.list_contains(state.options.filetypes, vim.bo[bufnr].filetype) then
      M.start(bufnr)
    end
  end
end

return M
