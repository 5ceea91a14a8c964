-- The user commands (:OciGenerate, :OciFix, ...) and the client-side command the server's
-- "with an instruction…" code action carries: the server cannot ask the user, the editor can.
local clients = require("oci_lsp.client")

local M = {}

local levels = vim.log.levels

-- The diagnostic kinds the server offers a fix for (a collection error has no function).
local FIXABLE = { ["test-failed"] = true, ["test-error"] = true, ["test-timeout"] = true }

-- The answer of oci.generate / oci.fix ({applied, verified, message}) as one message. When
-- nothing is applied the server has already said why (window/showMessage), or the user
-- cancelled it: saying it again would only double the message.
local function report(what)
  return function(result)
    if type(result) ~= "table" then
      vim.notify(("oci-lsp: %s: no answer"):format(what), levels.WARN)
      return
    end
    if result.applied then
      local message = clients.value(result.message) or ""
      local how = result.verified and "applied, verified" or "applied, NOT verified"
      vim.notify(("oci-lsp: %s: %s (%s)"):format(what, how, message), levels.INFO)
    end
  end
end

local function fix(client, argument, bufnr, name)
  local what = name and ("fix of `%s`"):format(name) or "fix"
  -- A fix of other tools' diagnostics ({uri, function, diagnostics}) has its own command.
  local command = argument.diagnostics and "oci.fixDiagnostics" or "oci.fix"
  clients.execute(client, command, argument, bufnr, report(what))
end

-- Asks for one line; nothing at all happens when the user cancels or enters nothing.
local function fix_with_instruction(client, argument, bufnr, name)
  vim.ui.input({ prompt = "Instruction for the fix: " }, function(line)
    if line == nil or vim.trim(line) == "" then
      return
    end
    local with = vim.tbl_extend("force", argument, { instruction = line })
    fix(client, with, bufnr, name)
  end)
end

-- Client-side commands, for the `commands` of the start configuration (and for lspconfig /
-- vim.lsp.config users: require("oci_lsp").commands). Called as Neovim calls them when a code
-- action carries one: (command, ctx).
M.client = {
  ["oci.fixWithInstruction"] = function(command, ctx)
    local argument = (command.arguments or {})[1]
    local on_test = type(argument) == "table" and argument.uri and argument.test
    local on_diagnostics = type(argument) == "table"
      and argument.uri
      and argument["function"]
      and type(argument.diagnostics) == "table"
    if not on_test and not on_diagnostics then
      vim.notify("oci-lsp: oci.fixWithInstruction needs {uri, test} or {uri, function, diagnostics}", levels.ERROR)
      return
    end
    local client = vim.lsp.get_client_by_id(ctx.client_id)
    if client == nil then
      vim.notify("oci-lsp: the client of this code action has stopped", levels.ERROR)
      return
    end
    local name = command.title and command.title:match("^Fix `([^`]+)`")
    fix_with_instruction(client, argument, ctx.bufnr, name)
  end,
}

-- The oci-lsp failures the fix can start from: the diagnostics on the cursor's line, else
-- every one in the buffer (the user picks). One entry per test.
local function failures(client, bufnr)
  local namespace = vim.lsp.diagnostic.get_namespace(client.id)
  local function collect(opts)
    local found, seen = {}, {}
    for _, diagnostic in ipairs(vim.diagnostic.get(bufnr, opts)) do
      local lsp = (diagnostic.user_data or {}).lsp or {}
      local data = type(lsp.data) == "table" and lsp.data or {}
      local test, fn = clients.value(data.test), clients.value(data["function"])
      -- As the server offers its fix: a failing test whose function under test is known.
      local fixable = diagnostic.source == "oci-lsp"
        and FIXABLE[clients.value(data.kind)]
        and type(test) == "string"
        and type(fn) == "string"
      if fixable and not seen[test] then
        seen[test] = true
        local name = fn:match("([^.]+)$")
        table.insert(found, { test = test, name = name, lnum = diagnostic.lnum })
      end
    end
    return found
  end
  local line = vim.api.nvim_win_get_cursor(0)[1] - 1
  local here = collect({ namespace = namespace, lnum = line })
  if #here > 0 then
    return here
  end
  return collect({ namespace = namespace })
end

local function pick_failure(client, bufnr, then_do)
  local found = failures(client, bufnr)
  if #found == 0 then
    vim.notify("oci-lsp: no failing test here to fix (save to run the tests)", levels.WARN)
    return
  end
  local function run(failure)
    if failure then
      then_do(client, { uri = vim.uri_from_bufnr(bufnr), test = failure.test }, bufnr, failure.name)
    end
  end
  if #found == 1 then
    return run(found[1])
  end
  vim.ui.select(found, {
    prompt = "Fix which failing test?",
    format_item = function(failure)
      return ("Fix `%s` so `%s` passes (line %d)"):format(
        failure.name,
        failure.test,
        failure.lnum + 1
      )
    end,
  }, run)
end

local function status_text(status)
  local v = clients.value
  local model = v(status.model) or {}
  local tests = v(status.tests) or {}
  local where = {} -- device, compute type: either may be unknown (null)
  for _, key in ipairs({ "device", "computeType" }) do
    if v(model[key]) then
      table.insert(where, v(model[key]))
    end
  end
  local lines = {
    ("oci-lsp %s"):format(v(status.version) or "?"),
    ("  backend: %s"):format(v(status.backend) or "-"),
    ("  model:   %s (%s)%s"):format(
      v(model.id) or "-",
      v(model.state) or "?",
      #where > 0 and (" on " .. table.concat(where, ", ")) or ""
    ),
  }
  if v(model.error) then
    table.insert(lines, "  error:   " .. v(model.error))
  end
  table.insert(
    lines,
    ("  tests:   %d failed, %d passed%s"):format(
      v(tests.failed) or 0,
      v(tests.passed) or 0,
      tests.running and ", running now" or ""
    )
  )
  local python = v(tests.python)
  if type(python) == "table" and v(python.path) then
    table.insert(
      lines,
      ("  python:  %s (%s)"):format(v(python.path), v(python.reason) or v(python.source) or "?")
    )
  end
  return table.concat(lines, "\n")
end

M.status_text = status_text

local function user_command(name, fn, opts)
  vim.api.nvim_create_user_command(name, function(args)
    local bufnr = vim.api.nvim_get_current_buf()
    local client = clients.get(bufnr)
    if client then
      fn(client, bufnr, args)
    end
  end, opts)
end

function M.create_user_commands()
  user_command("OciGenerate", function(client, bufnr)
    local position = vim.lsp.util.make_position_params(0, client.offset_encoding).position
    local argument = { uri = vim.uri_from_bufnr(bufnr), position = position }
    clients.execute(client, "oci.generate", argument, bufnr, report("generate"))
  end, { desc = "oci-lsp: generate the body of the stub at the cursor" })

  user_command("OciFix", function(client, bufnr)
    pick_failure(client, bufnr, fix)
  end, { desc = "oci-lsp: fix the function of the failing test at the cursor" })

  user_command("OciFixInstruction", function(client, bufnr)
    pick_failure(client, bufnr, fix_with_instruction)
  end, { desc = "oci-lsp: fix with a line of guidance" })

  user_command("OciRunTests", function(client, bufnr, args)
    -- Without !: the tests this buffer affects; with !: all of them.
    local argument = args.bang and vim.empty_dict() or { uri = vim.uri_from_bufnr(bufnr) }
    clients.execute(client, "oci.runTests", argument, bufnr, function(result)
      local r = type(result) == "table" and result or {}
      local failed = clients.value(r.failed) or 0
      vim.notify(
        ("oci-lsp: tests: %d failed, %d passed"):format(failed, clients.value(r.passed) or 0),
        failed > 0 and levels.WARN or levels.INFO
      )
    end)
  end, { bang = true, desc = "oci-lsp: run the tests this file affects (! for all)" })

  user_command("OciStatus", function(client, bufnr)
    -- The buffer's folder: in a multi-root session each folder has its own model and tests.
    local argument = { uri = vim.uri_from_bufnr(bufnr) }
    clients.execute(client, "oci.status", argument, bufnr, function(result)
      vim.notify(status_text(type(result) == "table" and result or {}), levels.INFO)
    end)
  end, { desc = "oci-lsp: the server's version, model and test counts" })
end

return M
