-- GET each path of the file PATHS names (one a line), in turn: pages of the storefront.
local paths = {}
for line in io.lines(os.getenv("PATHS")) do
  if line ~= "" then paths[#paths + 1] = line end
end
local counter = 0

request = function()
  counter = counter + 1
  -- A browser's Accept, so the pages are what a shopper gets.
  return wrk.format("GET", paths[(counter * 7919) % #paths + 1], { ["Accept"] = "text/html" })
end
