-- Drives the oci-lsp Neovim plugin in headless Neovim against the real server, as a user would:
-- save, read the diagnostics, list and pick code actions, type an instruction, run the :Oci
-- commands and :checkhealth. tests/test_neovim_e2e.py runs it and reads the JSON it writes.
--
-- Environment: OCI_WS (workspace), OCI_PLUGIN (editors/neovim), OCI_CMD (the server's argv,
-- JSON), OCI_BASE_URL and OCI_MODEL (the scripted model server), OCI_OUT (the JSON written at
-- the end), OCI_INSTRUCTION and OCI_TOOL_INSTRUCTION (what the user types when asked),
-- OCI_MYPY_CMD (the argv of a second language server that publishes mypy's diagnostics),
-- OCI_TOOLS_MYPY (the argv that runs mypy: the setting tools.mypy).
local function env(name)
  local value = os.getenv(name)
  assert(value and value ~= "", name .. " is not set")
  return value
end

local ws = env("OCI_WS")
local out_path = env("OCI_OUT")
local instruction = env("OCI_INSTRUCTION")
local tool_instruction = env("OCI_TOOL_INSTRUCTION")
vim.opt.runtimepath:prepend(env("OCI_PLUGIN"))

local results = { ok = false, steps = {} }
local notes = {} -- every vim.notify: what the user read
local echoes = {} -- every nvim_echo (the progress lines)
local prompts = {} -- every vim.ui.input prompt

-- The user's screen and keyboard, replaced by recorders: the plugin must only go through
-- these (and the LSP handlers' own vim.notify) to talk to the user.
vim.notify = function(msg, level)
  table.insert(notes, { msg = tostring(msg), level = level or vim.log.levels.INFO })
end
local real_echo = vim.api.nvim_echo
vim.api.nvim_echo = function(chunks, history, opts)
  local text = {}
  for _, chunk in ipairs(chunks) do
    table.insert(text, chunk[1])
  end
  table.insert(echoes, { text = table.concat(text), history = history })
  return real_echo(chunks, history, opts)
end

local function uri_of(relative)
  return vim.uri_from_fname(ws .. "/" .. relative)
end

local function oci_diagnostics(bufnr)
  local found = {}
  for _, d in ipairs(vim.diagnostic.get(bufnr)) do
    if d.source == "oci-lsp" then
      local data = ((d.user_data or {}).lsp or {}).data or {}
      table.insert(found, {
        lnum = d.lnum,
        message = d.message,
        test = data.test,
        code = d.code,
        suspects = type(data.suspects) == "table" and #data.suspects or 0,
      })
    end
  end
  return found
end

local function seen_state()
  local buffers = {}
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    local name = vim.api.nvim_buf_get_name(bufnr)
    if name:match("%.py$") then
      buffers[name] = {
        diagnostics = oci_diagnostics(bufnr),
        text = vim.api.nvim_buf_is_loaded(bufnr)
            and table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), "\n")
          or nil,
      }
    end
  end
  return {
    buffers = buffers,
    notes = notes,
    echoes = vim.list_slice(echoes, math.max(1, #echoes - 30)),
    prompts = prompts,
    clients = vim.tbl_map(function(c)
      return { id = c.id, name = c.name, initialized = c.initialized, root = c.root_dir }
    end, vim.lsp.get_clients()),
  }
end

local function stop_clients()
  for _, client in ipairs(vim.lsp.get_clients()) do
    vim.lsp.stop_client(client.id)
  end
  -- The server exits on shutdown/exit: nothing is left behind for the next test.
  vim.wait(10000, function()
    return #vim.lsp.get_clients() == 0
  end, 50)
end

local function finish(ok, err)
  results.ok = ok
  results.error = err
  results.seen = seen_state()
  stop_clients()
  local file = assert(io.open(out_path, "w"))
  file:write(vim.json.encode(results))
  file:close()
  os.exit(ok and 0 or 1)
end

local current_step = "start"
local function step(name)
  current_step = name
  table.insert(results.steps, name)
end

local function wait(what, condition, timeout)
  if not vim.wait(timeout or 90000, condition, 50) then
    error(("timed out waiting for %s"):format(what), 0)
  end
end

local function note_matching(pattern)
  for _, note in ipairs(notes) do
    if note.msg:find(pattern) then
      return note
    end
  end
  return nil
end

local function wait_note(pattern, what)
  wait(what or ("a message matching %q"):format(pattern), function()
    return note_matching(pattern) ~= nil
  end)
  return note_matching(pattern)
end

local function buffer_text(bufnr)
  return table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), "\n")
end

local function line_of(bufnr, pattern)
  for i, line in ipairs(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)) do
    if line:find(pattern) then
      return i - 1
    end
  end
  error(("no line matches %q"):format(pattern), 0)
end

-- The code actions Neovim offers at a line, as the user sees them in vim.ui.select; `choose`
-- picks the first whose title starts with it (nil: the user closes the menu).
local function code_actions_at(line, choose)
  vim.api.nvim_win_set_cursor(0, { line + 1, 4 })
  local titles
  local real_select = vim.ui.select
  vim.ui.select = function(items, opts, on_choice)
    titles = vim.tbl_map(function(item)
      return opts.format_item and opts.format_item(item) or item.action.title
    end, items)
    local chosen = nil
    for index, title in ipairs(titles) do
      if choose and not chosen and vim.startswith(title, choose) then
        chosen = index
      end
    end
    on_choice(chosen and items[chosen] or nil, chosen)
  end
  vim.lsp.buf.code_action()
  wait("the code actions", function()
    return titles ~= nil
  end, 30000)
  vim.ui.select = real_select
  return titles
end

local function answer_input(line)
  vim.ui.input = function(opts, on_confirm)
    table.insert(prompts, opts.prompt)
    on_confirm(line)
  end
end

local function main()
  step("no client yet")
  require("oci_lsp").setup({
    cmd = vim.json.decode(env("OCI_CMD")),
    settings = {
      backend = "openai",
      openai = { baseUrl = env("OCI_BASE_URL"), model = env("OCI_MODEL") },
      refine = { candidates = 1, maxRounds = 2 },
      generation = { maxNewTokens = 200 },
      -- The project's environment has no mypy: the user names the one that checks.
      tools = { mypy = vim.json.decode(env("OCI_TOOLS_MYPY")) },
    },
  })
  vim.cmd("OciStatus") -- the empty start buffer: says what is wrong
  results.no_client_note = (note_matching("no oci%-lsp client") or {}).msg

  step("attach")
  vim.cmd.edit(vim.fn.fnameescape(ws .. "/calc.py"))
  local calc = vim.api.nvim_get_current_buf()
  local client
  wait("the client to start", function()
    client = require("oci_lsp.client").for_buffer(calc)
    return client ~= nil and client.initialized
  end)
  results.client = {
    name = client.name,
    root = client.root_dir,
    init_options = client.config.init_options,
    settings = client.config.settings,
  }

  step("diagnostics after a save")
  vim.api.nvim_buf_set_lines(calc, -1, -1, false, { "# saved from Neovim" })
  vim.cmd.write()
  local test_buf = vim.uri_to_bufnr(uri_of("tests/test_calc.py"))
  local function has_failure(bufnr, test)
    for _, d in ipairs(oci_diagnostics(bufnr)) do
      if d.test == test then
        return d
      end
    end
  end
  wait("the failures of test_add and test_mul", function()
    return has_failure(calc, "tests/test_calc.py::test_add")
      and has_failure(calc, "tests/test_calc.py::test_mul")
      and has_failure(test_buf, "tests/test_calc.py::test_add")
  end)
  -- test_big fails in `check` (the traceback's), but the fault is `scale`'s: once located
  -- (before any edit, which would stop the locate run), the diagnostic at check offers the
  -- fix of scale too.
  wait("test_big's located failure", function()
    local found = has_failure(calc, "tests/test_calc.py::test_big")
    return found and found.suspects >= 2
  end)
  local add_line, mul_line = line_of(calc, "^def add"), line_of(calc, "^def mul")
  results.add_diagnostic = has_failure(calc, "tests/test_calc.py::test_add")
  results.add_line = add_line
  results.test_file_diagnostic = has_failure(test_buf, "tests/test_calc.py::test_add")

  step("code actions")
  results.actions_at_add = code_actions_at(add_line)
  results.actions_at_mul = code_actions_at(line_of(calc, "^    %.%.%.$"))

  step("an empty instruction does nothing")
  answer_input("")
  code_actions_at(add_line, "Fix `add` with an instruction… (OpenCodeInterpreter)")

  step("fix with an instruction")
  answer_input(instruction)
  code_actions_at(add_line, "Fix `add` with an instruction… (OpenCodeInterpreter)")
  wait("add's new body", function()
    local body = vim.api.nvim_buf_get_lines(calc, add_line + 1, add_line + 2, false)[1]
    return body == "    return a + b"
  end)
  results.instruction_note = wait_note("fix of `add`").msg
  wait("add's diagnostics to go", function()
    return not has_failure(calc, "tests/test_calc.py::test_add")
  end)

  step(":OciFix")
  vim.api.nvim_win_set_cursor(0, { mul_line + 1, 0 })
  vim.cmd("OciFix")
  wait("mul's new body", function()
    return buffer_text(calc):find("\n    return a %* b\n") ~= nil
  end)
  results.fix_note = wait_note("fix of `mul`").msg

  step(":OciGenerate")
  vim.api.nvim_win_set_cursor(0, { line_of(calc, "raise NotImplementedError") + 1, 4 })
  vim.cmd("OciGenerate")
  wait("sub's body", function()
    return buffer_text(calc):find("\n    return a %- b\n") ~= nil
  end)
  results.generate_note = wait_note("generate: ").msg

  step("fix the second suspect instead")
  local check_line = line_of(calc, "^def check")
  results.actions_at_check = code_actions_at(
    check_line,
    "Fix `scale` instead so `test_big` passes (OpenCodeInterpreter)"
  )
  wait("scale's new body", function()
    return buffer_text(calc):find("\n    return x %* 2\n") ~= nil
  end)

  step("another tool's diagnostics")
  vim.cmd.write() -- calc.py, before the next buffer takes the window
  vim.cmd.edit(vim.fn.fnameescape(ws .. "/labels.py"))
  local labels = vim.api.nvim_get_current_buf()
  -- A second server, as pylsp-mypy would be: mypy's errors, published on open and save.
  local mypy_id = vim.lsp.start({
    name = "mypy-e2e",
    cmd = vim.json.decode(env("OCI_MYPY_CMD")),
    root_dir = ws,
  }, { bufnr = labels })
  local function mypy_diagnostics()
    local found = {}
    for _, d in ipairs(vim.diagnostic.get(labels)) do
      if d.source == "mypy" then
        table.insert(found, { lnum = d.lnum, code = d.code, message = d.message })
      end
    end
    return found
  end
  wait("mypy's diagnostics", function()
    return #mypy_diagnostics() == 2
  end)
  results.mypy_diagnostics = mypy_diagnostics()
  results.mypy_namespace = vim.lsp.diagnostic.get_namespace(mypy_id, false)
  local label_return = line_of(labels, "^    return n$")
  results.actions_at_label = code_actions_at(label_return)

  step("fix another tool's diagnostic")
  code_actions_at(label_return, "Fix `label`: return-value")
  wait("label's new body", function()
    return vim.api.nvim_buf_get_lines(labels, label_return, label_return + 1, false)[1]
      == "    return str(n)"
  end)
  -- Neovim ran the action's command itself (no answer reaches the plugin): the progress's
  -- last line says what verified the edit.
  wait("the end of label's fix", function()
    local last = echoes[#echoes]
    return last ~= nil and last.text:find("^oci%-lsp: Fixing label: mypy") ~= nil
  end)
  results.label_progress = echoes[#echoes].text
  -- Saved, mypy checks the file again: the diagnostic is gone, first's stays.
  vim.cmd.write()
  wait("mypy to stop reporting label", function()
    local left = mypy_diagnostics()
    return #left == 1 and left[1].lnum ~= label_return
  end)

  step("fix another tool's diagnostic with an instruction")
  answer_input(tool_instruction)
  local first_return = line_of(labels, "^    return names%[0%]")
  results.actions_at_first = code_actions_at(first_return, "Fix `first` with an instruction…")
  wait("first's new body", function()
    return buffer_text(labels):find('\n    return names%[0%] if names else ""\n') ~= nil
  end)
  results.first_note = wait_note("fix of `first`").msg
  vim.cmd.write()
  wait("mypy to report nothing", function()
    return #mypy_diagnostics() == 0
  end)
  results.labels_text = buffer_text(labels)
  vim.cmd.buffer(calc)

  step(":OciRunTests")
  vim.cmd.write()
  vim.cmd("OciRunTests")
  results.run_note = wait_note("tests: %d+ failed").msg

  step(":OciStatus")
  local before = #notes
  vim.cmd("OciStatus")
  wait("the status", function()
    return #notes > before and notes[#notes].msg:find("^oci%-lsp ") ~= nil
  end)
  results.status_note = notes[#notes].msg

  step("one client per root")
  vim.cmd.edit(vim.fn.fnameescape(ws .. "/tests/test_calc.py"))
  wait("the client to attach to the test file", function()
    return require("oci_lsp.client").for_buffer(0) ~= nil
  end)
  results.test_file_client = require("oci_lsp.client").for_buffer(0).id
  results.clients = #require("oci_lsp.client").all() -- oci-lsp's; mypy-e2e is another
  results.first_client = client.id

  step(":checkhealth")
  vim.cmd("checkhealth oci_lsp")
  results.health = vim.api.nvim_buf_get_lines(0, 0, -1, false)

  results.calc_text = buffer_text(calc)
  results.echoes = vim.tbl_map(function(e)
    return e.text
  end, echoes)
  results.echoes_in_history = vim.tbl_filter(function(e)
    return e.history and e.text:find("^oci%-lsp: ")
  end, echoes)
  results.prompts = prompts
  results.notes = notes
end

local ok, err = xpcall(main, debug.traceback)
if not ok then
  finish(false, ("step %q: %s"):format(current_step, err))
end
finish(true, nil)
