-- :checkhealth oci_lsp: what a user needs to get from "nothing happens" to a cause.
local M = {}

local health = vim.health

-- The health report is a buffer of its own; the buffer the user asked about is the one they
-- came from (in the previous tab page, or the previous window with :vert checkhealth).
local function origin_buffer()
  local current = vim.api.nvim_get_current_buf()
  local name = vim.api.nvim_buf_get_name(current)
  if name ~= "health://" and vim.bo[current].filetype ~= "checkhealth" then
    return current
  end
  local previous_tab = vim.fn.tabpagenr("#")
  if previous_tab > 0 and previous_tab ~= vim.fn.tabpagenr() then
    local tab = vim.api.nvim_list_tabpages()[previous_tab]
    return vim.api.nvim_win_get_buf(vim.api.nvim_tabpage_get_win(tab))
  end
  local previous_win = vim.fn.winnr("#")
  if previous_win > 0 and previous_win ~= vim.fn.winnr() then
    return vim.fn.winbufnr(previous_win)
  end
  return nil
end

local function check_neovim()
  local v = vim.version()
  local version = ("%d.%d.%d"):format(v.major, v.minor, v.patch)
  if vim.fn.has("nvim-0.10") == 1 then
    health.ok("Neovim " .. version)
  else
    health.error("Neovim " .. version .. " is too old", { "oci-lsp needs Neovim 0.10 or later" })
  end
end

local function check_setup(oci)
  if oci.is_configured() then
    local options = oci.options()
    local starts = options.autostart
        and ("starts on %s buffers"):format(table.concat(options.filetypes, ", "))
      or "autostart is off"
    health.ok("setup() was called; " .. starts)
  else
    health.warn("setup() was not called: no autostart and no :Oci commands", {
      "call require('oci_lsp').setup({}) in your config (with autostart = false if you start"
        .. " the server with vim.lsp.config or nvim-lspconfig)",
    })
  end
end

local function check_executable(options)
  local cmd = options.cmd
  if vim.fn.executable(cmd[1]) ~= 1 then
    health.error(("`%s` is not executable"):format(cmd[1]), {
      "install it: pip install oci-lsp (in a virtualenv, or with pipx)",
      "or set `cmd` in setup() to the full path, e.g. { '/path/to/venv/bin/oci-lsp' }",
    })
    return
  end
  health.ok(("`%s` is executable: %s"):format(cmd[1], vim.fn.exepath(cmd[1])))
  local argv = vim.list_extend(vim.deepcopy(cmd), { "--version" })
  local ok, run = pcall(vim.system, argv, { text = true })
  if not ok then
    health.error(("`%s --version` could not start: %s"):format(table.concat(cmd, " "), run))
    return
  end
  local done = run:wait(20000)
  local out = vim.trim(done.stdout or "")
  if done.code == 0 and out:match("^oci%-lsp %S+") then
    health.ok(out)
  else
    local said = vim.trim((done.stderr or "") .. "\n" .. out)
    local what = ("`%s` failed (exit %s)"):format(table.concat(argv, " "), tostring(done.code))
    health.error(what, { said ~= "" and said or "it printed nothing" })
  end
end

-- `tests.python` of oci.status: the interpreter that runs the tests, and why (:h oci-lsp-interpreter).
local function check_interpreter(python)
  local v = require("oci_lsp.client").value
  if type(python) ~= "table" or type(v(python.path)) ~= "string" then
    health.info("the server did not say which interpreter runs the tests (an older server?)")
    return
  end
  local text = ("tests run with %s (%s)"):format(python.path, v(python.reason) or v(python.source) or "?")
  health.ok(text)
  if v(python.source) == "server" then
    health.info(
      "that is oci-lsp's own Python: if the tests need the project's packages, start Neovim"
        .. " with the project's environment active, create .venv in the project, or set"
        .. " tests.python (:h oci-lsp-interpreter)"
    )
  end
end

local function check_client(client, bufnr)
  local clients = require("oci_lsp.client")
  local root = client.root_dir or "-"
  health.ok(("client %d (%s) attached, root %s"):format(client.id, client.name, root))
  if not client.initialized then
    health.warn("the server is still starting")
    return
  end
  local answer, err = clients.request_sync(client, "workspace/executeCommand", {
    command = "oci.status",
    arguments = { { uri = vim.uri_from_bufnr(bufnr) } },
  }, 10000, bufnr)
  if answer == nil or answer.err then
    health.warn("oci.status got no answer: " .. tostring(err or (answer.err or {}).message))
    return
  end
  local status = answer.result or {}
  local model = clients.value(status.model) or {}
  local state = clients.value(model.state) or "?"
  local text = ("server %s, backend %s, model %s: %s"):format(
    clients.value(status.version) or "?",
    clients.value(status.backend) or "-",
    clients.value(model.id) or "-",
    state
  )
  if state == "error" then
    health.warn(text, { clients.value(model.error) or "the server gave no reason" })
  else
    health.ok(text)
  end
  local tests = clients.value(status.tests) or {}
  check_interpreter(clients.value(tests.python))
end

local function check_buffer(oci)
  local clients = require("oci_lsp.client")
  local bufnr = origin_buffer()
  local client = bufnr and clients.for_buffer(bufnr)
  if client then
    check_client(client, bufnr)
  elseif bufnr and vim.list_contains(oci.options().filetypes, vim.bo[bufnr].filetype) then
    local name = vim.api.nvim_buf_get_name(bufnr)
    health.warn(("no oci-lsp client is attached to buffer %d (%s)"):format(bufnr, name), {
      "see :LspLog for why the server did not start, or :OciStatus in that buffer",
    })
  else
    health.info("the current buffer is not one oci-lsp serves; open a Python file to start it")
  end
  for _, other in ipairs(clients.all()) do
    if other ~= client then
      health.info(("client %d also running, root %s"):format(other.id, other.root_dir or "-"))
    end
  end
end

function M.check()
  local oci = require("oci_lsp")
  health.start("oci-lsp: Neovim")
  check_neovim()
  check_setup(oci)
  health.start("oci-lsp: server")
  check_executable(oci.options())
  health.start("oci-lsp: current buffer")
  check_buffer(oci)
end

return M
