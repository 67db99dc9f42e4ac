-- GET the request paths of a file (PATHS), one per line (lines not starting with `/` are left
-- out), spread over the file: the benchmarks' product, search, listing and page URLs. ACCEPT, when
-- set, is sent as the Accept header (`text/html`: the pages a browser gets).
local paths = {}
for line in io.lines(os.getenv("PATHS")) do
  if line:match("^/") then
    paths[#paths + 1] = line
  end
end
local headers = {}
if os.getenv("ACCEPT") then
  headers["Accept"] = os.getenv("ACCEPT")
end
local counter = 0

request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter * 7919) % #paths + 1], headers)
end
